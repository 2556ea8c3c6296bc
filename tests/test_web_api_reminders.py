"""The web pages of the API (tokens, webhooks, deliveries) and of the reminders (list, the
appointments file, kinds), through Flask's client with CSRF on."""
from __future__ import annotations

import re

import io

from appliance import api_tokens, reminders, webhooks
from appliance.db import write
from tests import web_support
from tests.web_support import START, field_errors, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures


def test_an_admin_makes_a_token_shown_once_and_staff_cannot_open_the_page(web, admin, staff):
    assert staff.get("/admin/api/").status_code == 403
    answer = post_form(admin, "/admin/api/", {"name": "予約システム", "scopes": ["send", "read"],
                                              "rate": "30"})
    page = answer.get_data(as_text=True)
    token = re.search(r'<code class="secret">(tsu_[^<]+)</code>', page).group(1)
    stored = api_tokens.authenticate(web.db.conn, token)
    assert stored.name == "予約システム" and stored.scopes == ("send", "read")
    assert stored.rate_per_minute == 30
    assert token not in (answer.headers.get("Set-Cookie") or "")
    again = admin.get("/admin/api/").get_data(as_text=True)
    assert token not in again and stored.prefix in again
    assert "api_token_create" in web.audit_actions()


def test_a_token_page_sets_the_webhook_shows_its_secret_once_and_resends_a_failed_delivery(
        web, admin):
    with write(web.db) as conn:
        token, _ = api_tokens.create(conn, "電子カルテ", "read", actor="t", now=START,
                                     rate_per_minute=60)
    path = f"/admin/api/{token.id}"
    refused = post_form(admin, path, {"url": "ftp://x", "events": ["message.sent"]})
    assert field_errors(refused.get_data(as_text=True), "url")
    answer = post_form(admin, path, {"url": "http://192.0.2.1:8000/hook",
                                     "events": ["message.sent", "reply.received"]})
    page = answer.get_data(as_text=True)
    secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', page).group(1)
    hook = webhooks.for_token(web.db.conn, token.id)
    assert hook.events == ("message.sent", "reply.received")
    with write(web.db) as conn:
        assert conn.execute("SELECT secret FROM api_webhooks").fetchone()[0] == secret
        conn.execute("INSERT INTO api_events (type, subject, at, body) VALUES "
                     "('message.sent', '1', ?, '{}')", [START])
        conn.execute("INSERT INTO api_deliveries (webhook_id, event_id, state, attempts, "
                     "created_at, give_up_at, last_error) VALUES (?, 1, 'failed', 12, ?, ?, "
                     "'gave up: not delivered in time')", [hook.id, START, START])
    page = admin.get(path).get_data(as_text=True)
    assert "gave up" in page and secret not in page
    post_form(admin, "/admin/api/deliveries/1/resend", form_page=path)
    assert web.db.conn.execute("SELECT state FROM api_deliveries").fetchone()[0] == "pending"
    post_form(admin, f"{path}/revoke", form_page=path)
    assert api_tokens.get(web.db.conn, token.id).revoked_at is not None
    assert not webhooks.for_token(web.db.conn, token.id).enabled


def _kind(web) -> int:
    with write(web.db) as conn:
        return reminders.save_kind(conn, web.config, name="採血", text="{name}様 {date} {time} 採血",
                                   days_before=1, send_time="17:00", actor="t", now=START)


def test_the_appointments_file_is_previewed_then_imported_on_confirm(web, staff):
    _kind(web)
    web.db.conn.execute("UPDATE contacts SET patient_id = 'P001' WHERE id = ?", [web.contact_id])
    good = "患者ID,種類,予約日,時刻\r\nP001,採血,2027/01/20,10:00\r\n".encode("cp932")
    answer = post_form(staff, "/reminders/import", {"file": (io.BytesIO(good),
                                                             "予約.csv")},
                       content_type="multipart/form-data")
    page = answer.get_data(as_text=True)
    assert "山田 太郎" in page and "reminders/import/confirm" in page
    assert web.count("reminders") == 0                     # nothing until confirmed
    post_form(staff, "/reminders/import/confirm", form_page="/reminders/import")
    assert web.count("reminders") == 1
    listing = staff.get("/reminders").get_data(as_text=True)
    assert "山田 太郎" in listing and "01/20" in listing


def test_a_bad_appointments_file_shows_each_problem_and_imports_nothing(web, staff):
    _kind(web)
    bad = "患者ID,種類,予約日,時刻\r\nP404,採血,2027/01/20,10:00\r\n".encode("utf-8")
    answer = post_form(staff, "/reminders/import", {"file": (io.BytesIO(bad),
                                                             "x.csv")},
                       content_type="multipart/form-data")
    page = answer.get_data(as_text=True)
    assert "2行目" in page and "P404" in page and "reminders/import/confirm" not in page
    assert web.count("reminders") == 0


def test_a_reminder_that_could_not_go_is_shown_with_why(web, staff):
    kind_id = _kind(web)
    with write(web.db) as conn:
        reminders.upsert(conn, contact_id=web.contact_id, kind_id=kind_id,
                         appointment_at=START + 3600, actor="t", now=START - 86400,
                         source="api", external_id="M1")
        reminders.run_due(conn, web.config, START + 1800)   # its latest moment has passed
    page = staff.get("/reminders").get_data(as_text=True)
    section = page[page.index('id="missed"'):]
    assert "山田 太郎" in section and "予約時刻までに送れませんでした" in section


def test_a_kind_is_saved_from_its_page_and_a_bad_text_is_refused_beside_the_field(web, staff):
    form = {"name": "透析予約", "template_id": "0", "timing": "days", "days_before": "1",
            "send_time": "17:00", "quiet_start": "21:00", "quiet_end": "08:00",
            "latest_minutes": "60", "choices": "はい / 変更したい", "priority": "routine",
            "enabled": "y"}
    refused = post_form(staff, "/reminders/kinds", {**form, "text": "{name}様 {nmae}"})
    assert field_errors(refused.get_data(as_text=True), "text")
    assert reminders.kinds(web.db.conn) == []
    post_form(staff, "/reminders/kinds", {**form, "text": "{name}様 {date} {time}から透析です"})
    saved = reminders.kinds(web.db.conn)
    assert [(k.name, k.days_before, k.choices) for k in saved] == [("透析予約", 1,
                                                                    ("はい", "変更したい"))]
    edit = staff.get(f"/reminders/kinds/{saved[0].id}").get_data(as_text=True)
    assert "{date} {time}から透析です" in edit
