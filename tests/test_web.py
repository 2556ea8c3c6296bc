"""Every route of the web UI through Flask's test client, with CSRF protection on as in
production: who may open what, forms refused without their token, bad input answered beside
its field with nothing saved, HTML escaped, the send flow that sends once."""
from __future__ import annotations

import re

import pytest

from appliance import config as config_mod, contacts, users
from appliance.db import connect
from tests.web_support import enrol_two_factor, log_in, totp_code
from webui import create_app

DATA = __import__("pathlib").Path(__file__).parent / "data"

GET_PAGES = ["/", "/send", "/broadcasts", "/inbox", "/contacts", "/contacts/new",
             "/contacts/import", "/contacts/export", "/templates", "/templates/new",
             "/schedules", "/admin/users", "/admin/audit", "/admin/settings", "/api/status",
             "/account"]
ADMIN_PAGES = ["/admin/users", "/admin/audit", "/admin/settings"]


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n'
                    '[web]\nsession_timeout_minutes = 30\nmax_failed_logins = 3\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(path)
    application = create_app(config, testing=True)
    application.extensions["tsunagu_clock"] = Clock()
    db = connect(config.database)
    users.create_user(db, "admin1", "admin", password="admin-pass-123456", actor="t")
    enrol_two_factor(db, "admin1", application.extensions["tsunagu_clock"].t)
    users.create_user(db, "nurse1", "staff", password="nurse-pass-123456", actor="t")
    group = contacts.create_group(db, "月水金 午前", actor="t", kind="shift")
    contacts.add_contact(db, name="山田 太郎", kana="ヤマダ タロウ", phone="090-1234-5678",
                         actor="t", group_ids=[group.id])
    application.extensions["test_db"] = db
    application.extensions["test_group"] = group.id
    return application


def token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username: str, password: str):
    app = client.application
    return log_in(client, username, password, code=totp_code(
        app.extensions["test_db"], app.extensions["tsunagu_clock"], username))


@pytest.fixture
def staff(app):
    client = app.test_client()
    assert login(client, "nurse1", "nurse-pass-123456").status_code == 302
    return client


@pytest.fixture
def admin(app):
    client = app.test_client()
    assert login(client, "admin1", "admin-pass-123456").status_code == 302
    return client


def count(app, table: str) -> int:
    return app.extensions["test_db"].conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("path", GET_PAGES + ["/broadcasts/1", "/broadcasts/1/calls",
                                              "/contacts/1", "/templates/1"])
def test_every_page_sends_anonymous_visitors_to_the_login_page(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_staff_cannot_open_admin_pages(staff, path):
    assert staff.get(path).status_code == 403


@pytest.mark.parametrize("path", GET_PAGES)
def test_every_page_opens_for_an_admin_with_security_headers(admin, path):
    response = admin.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_httponly_and_samesite(app):
    client = app.test_client()
    response = login(client, "nurse1", "nurse-pass-123456")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_saved(staff, app):
    before = count(app, "contacts")
    response = staff.post("/contacts/new", data={"name": "偽者", "phone": "090-9999-0000"})
    assert response.status_code == 400 and "フォームの有効期限" in response.get_data(as_text=True)
    assert count(app, "contacts") == before


def test_a_landline_is_refused_beside_the_phone_field_and_nothing_is_saved(staff, app):
    before = count(app, "contacts")
    response = staff.post("/contacts/new", data={
        "name": "固定 電話", "phone": "03-1234-5678", "csrf_token": token(staff, "/contacts/new")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'has-error">\s*<label for="phone"', page) and "固定電話" in page
    assert count(app, "contacts") == before


def test_html_in_a_name_is_shown_as_text_not_markup(staff):
    staff.post("/contacts/new", data={"name": "<script>alert(1)</script>𠮷田",
                                      "phone": "090-1111-2222",
                                      "csrf_token": token(staff, "/contacts/new")})
    page = staff.get("/contacts").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;𠮷田" in page


def test_repeated_failures_make_the_device_wait_and_are_audited(app):
    client = app.test_client()
    for _ in range(3):
        assert login(client, "nurse1", "wrong").status_code == 200
    page = login(client, "nurse1", "nurse-pass-123456").get_data(as_text=True)
    assert "秒待って" in page
    actions = [r[0] for r in app.extensions["test_db"].conn.execute(
        "SELECT action FROM audit_log WHERE action LIKE 'login%'")]
    assert actions.count("login_failed") >= 3


def test_an_idle_session_times_out_on_the_server(app, staff):
    clock = app.extensions["tsunagu_clock"]
    assert staff.get("/").status_code == 200
    clock.t += 29 * 60
    assert staff.get("/").status_code == 200        # activity keeps it alive
    clock.t += 31 * 60
    response = staff.get("/")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]


def _compose(client, app, **extra):
    data = {"text": "{name}様 停電のため本日の透析は中止です。", "groups": str(
        app.extensions["test_group"]), "priority": "emergency", "template_id": "0",
        "choices": "来院できる\n来院できない", "csrf_token": token(client, "/send"), **extra}
    return client.post("/send", data=data)


def _confirm_fields(client, page: str) -> dict:
    """The hidden fields of the confirm page's send form, with a fresh CSRF token."""
    form = page.split('id="confirm-form"')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields["csrf_token"] = token(client, "/send")
    return fields


def test_nothing_is_sent_before_the_explicit_confirm_and_a_double_submit_sends_once(staff, app):
    confirm = _compose(staff, app)
    page = confirm.get_data(as_text=True)
    assert "1名に送信する" in page and "山田 太郎様 停電のため" in page
    assert count(app, "broadcasts") == 0
    fields = _confirm_fields(staff, page)
    first = staff.post("/send/commit", data=fields)
    second = staff.post("/send/commit", data=fields)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count(app, "broadcasts") == 1 and count(app, "recipients") == 1
    detail = staff.get(first.headers["Location"]).get_data(as_text=True)
    assert "山田 太郎" in detail and "来院できる" in detail


@pytest.mark.parametrize("extra, message", [
    ({"text": "   "}, "本文が空です"),
    ({"text": "{nmae}様"}, "nmae"),
    ({"text": "あ" * 700}, "長すぎます"),
    ({"groups": ""}, "送信先を選んでください"),
    ({"send_at": "tomorrow"}, "2026-12-01 17:00"),
])
def test_a_bad_broadcast_is_explained_beside_its_field_and_nothing_is_queued(staff, app, extra,
                                                                             message):
    page = _compose(staff, app, **extra).get_data(as_text=True)
    assert message in page and 'class="error"' in page
    assert count(app, "broadcasts") == 0


def test_the_live_counter_agrees_with_the_sender(staff):
    from modem import pdu
    text = "停電のため本日の透析は中止です。𠮷田様" * 4
    response = staff.post("/api/count", json={"text": text},
                          headers={"X-CSRFToken": token(staff, "/send")})
    assert response.get_json()["parts"] == pdu.count(text).parts == len(pdu.split(text))
    assert response.get_json()["chars"] == len(text)


def test_a_template_with_an_unknown_placeholder_is_refused_and_not_saved(staff, app):
    before = count(app, "templates")
    page = staff.post("/templates/new", data={"name": "x", "text": "{nmae}様",
                                               "csrf_token": token(staff, "/templates/new")})
    assert "nmae" in page.get_data(as_text=True) and count(app, "templates") == before


def test_a_roster_with_problems_is_previewed_row_by_row_and_nothing_imported(admin, app):
    before = count(app, "contacts")
    with open(DATA / "messy_14_cp932.csv", "rb") as f:
        page = admin.post("/contacts/import", data={"file": (f, "messy.csv"),
                                                    "csrf_token": token(admin, "/contacts/import")},
                          content_type="multipart/form-data").get_data(as_text=True)
    assert "行目" in page and "row-error" in page
    # Only the rows without problems can be imported, and only when asked (issue 11).
    confirm = page.split('action="/contacts/import/confirm"', 1)[1].split("</form>")[0]
    assert 'name="skip_errors" value="1"' in confirm
    assert count(app, "contacts") == before


def test_a_clean_cp932_roster_is_imported_after_the_preview_is_confirmed(admin, app):
    with open(DATA / "roster_200_cp932.csv", "rb") as f:
        page = admin.post("/contacts/import", data={"file": (f, "roster.csv"),
                                                    "csrf_token": token(admin, "/contacts/import")},
                          content_type="multipart/form-data").get_data(as_text=True)
    assert "200行を取り込む" in page and count(app, "contacts") == 1
    confirm_token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = admin.post("/contacts/import/confirm", data={"csrf_token": confirm_token})
    assert response.status_code == 302 and count(app, "contacts") == 201


def test_contacts_export_in_cp932_for_excel(admin):
    response = admin.get("/contacts/export?encoding=cp932")
    assert response.status_code == 200 and "山田 太郎".encode("cp932") in response.data


def test_metrics_are_for_the_pi_itself_or_an_admin(app, admin, staff):
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}
                                 ).status_code == 403
    assert staff.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 403
    assert b"tsunagu_queue_depth" in admin.get("/metrics").data
    assert app.test_client().get("/metrics").status_code == 200  # 127.0.0.1


def test_english_is_selectable_and_remembered_for_the_user(staff, app):
    staff.post("/language", data={"lang": "en", "csrf_token": token(staff, "/")})
    assert "Sending service" in staff.get("/").get_data(as_text=True)
    assert users.get_user(app.extensions["test_db"], "nurse1").locale == "en"


def test_an_admin_adds_a_user_and_sees_the_generated_password_once(admin, app):
    page = admin.post("/admin/users", data={"username": "clerk", "role": "staff",
                                            "csrf_token": token(admin, "/admin/users")})
    text = page.get_data(as_text=True)
    assert "clerk" in text and '<code class="secret"' in text
    assert users.get_user(app.extensions["test_db"], "clerk").role == "staff"


def test_cancel_stops_a_queued_broadcast_from_the_page(staff, app):
    fields = _confirm_fields(staff, _compose(staff, app).get_data(as_text=True))
    location = staff.post("/send/commit", data=fields).headers["Location"]
    broadcast_id = location.rsplit("/", 1)[1]
    staff.post(f"/broadcasts/{broadcast_id}/cancel", data={"csrf_token": token(staff, location)})
    state = app.extensions["test_db"].conn.execute("SELECT state FROM broadcasts").fetchone()[0]
    assert state == "cancelled"


def test_unknown_pages_get_a_styled_404(staff):
    response = staff.get("/nope")
    assert response.status_code == 404 and "見つかりません" in response.get_data(as_text=True)


def test_a_recurring_message_is_added_paused_and_a_bad_time_refused(staff, app):
    data = {"name": "採血日のお知らせ", "days": ["mon"], "at": "17:00", "groups": ["月水金 午前"],
            "template_id": "0", "text": "{name}様 明日は採血日です", "priority": "routine"}
    bad = staff.post("/schedules", data={**data, "at": "25:00",
                                          "csrf_token": token(staff, "/schedules")})
    assert "17:00 の形で" in bad.get_data(as_text=True) and count(app, "schedules") == 0
    staff.post("/schedules", data={**data, "csrf_token": token(staff, "/schedules")})
    row = app.extensions["test_db"].conn.execute("SELECT id, cron, enabled FROM schedules").fetchone()
    assert (row["cron"], row["enabled"]) == ("0 17 * * mon", 1)
    staff.post(f"/schedules/{row['id']}/disable", data={"csrf_token": token(staff, "/schedules")})
    assert app.extensions["test_db"].conn.execute("SELECT enabled FROM schedules").fetchone()[0] == 0


def test_retry_and_resend_from_the_broadcast_page(staff, app):
    fields = _confirm_fields(staff, _compose(staff, app).get_data(as_text=True))
    location = staff.post("/send/commit", data=fields).headers["Location"]
    conn = app.extensions["test_db"].conn
    conn.execute("UPDATE recipients SET state = 'failed'")
    conn.execute("UPDATE broadcasts SET state = 'done'")
    broadcast_id = location.rsplit("/", 1)[1]
    staff.post(f"/broadcasts/{broadcast_id}/retry", data={"csrf_token": token(staff, location)})
    assert conn.execute("SELECT state FROM recipients").fetchone()[0] == "queued"
    conn.execute("UPDATE recipients SET state = 'delivered'")
    conn.execute("UPDATE broadcasts SET state = 'done'")
    moved = staff.post(f"/broadcasts/{broadcast_id}/resend",
                       data={"csrf_token": token(staff, location)})
    assert moved.headers["Location"] != location and count(app, "broadcasts") == 2


def test_the_dashboard_test_button_queues_the_test_message_or_says_why_not(staff, app):
    response = staff.post("/test", data={"csrf_token": token(staff, "/")}, follow_redirects=True)
    assert "テストグループに連絡先がありません" in response.get_data(as_text=True)
    db = app.extensions["test_db"]
    test = contacts.create_group(db, "テスト", actor="t", kind="test")
    contacts.add_contact(db, name="受付", phone="090-5555-0001", actor="t", group_ids=[test.id])
    staff.post("/test", data={"csrf_token": token(staff, "/")})
    assert db.conn.execute("SELECT drill, title FROM broadcasts").fetchone()[:] == (1, "送信テスト")


@pytest.mark.parametrize("path", [
    "/send", "/send/commit", "/broadcasts/1/cancel", "/broadcasts/1/retry", "/broadcasts/1/resend",
    "/inbox/1/handled", "/contacts/new", "/contacts/1", "/contacts/1/deactivate", "/groups",
    "/contacts/import", "/contacts/import/confirm", "/templates/new", "/templates/1",
    "/templates/1/delete", "/schedules", "/schedules/1/disable", "/admin/users",
    "/admin/users/2/reset", "/language", "/logout", "/test", "/check",
    "/recipients/1/call", "/calls/1/undo"])
def test_every_form_post_without_its_csrf_token_is_refused(admin, app, path):
    before = app.extensions["test_db"].conn.execute(
        "SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM broadcasts)").fetchone()[:]
    response = admin.post(path, data={"name": "x", "text": "x", "lang": "en"})
    assert response.status_code == 400
    after = app.extensions["test_db"].conn.execute(
        "SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM broadcasts)").fetchone()[:]
    assert after == before


def test_staff_phoning_from_the_call_list_record_the_outcome_and_can_undo_it(staff, app):
    fields = _confirm_fields(staff, _compose(staff, app).get_data(as_text=True))
    location = staff.post("/send/commit", data=fields).headers["Location"]
    broadcast_id = location.rsplit("/", 1)[1]
    calls = staff.get(f"/broadcasts/{broadcast_id}/calls").get_data(as_text=True)
    assert "山田 太郎" in calls and "連絡がついた" in calls
    assert 'href="tel:090-1234-5678"' in calls
    recipient = app.extensions["test_db"].conn.execute("SELECT id FROM recipients").fetchone()[0]
    page = staff.post(f"/recipients/{recipient}/call", data={
        "outcome": "reached", "note": "明日来院", "csrf_token": token(staff, location)},
        follow_redirects=True).get_data(as_text=True)
    # Still on the list, marked done with the note, and the undo is right there.
    assert "山田 太郎" in page and "明日来院" in page and "取り消す" in page
    assert "電話で確認" in staff.get(location).get_data(as_text=True)
    call_id = app.extensions["test_db"].conn.execute("SELECT id FROM call_outcomes").fetchone()[0]
    staff.post(f"/calls/{call_id}/undo", data={"csrf_token": token(staff, location)})
    assert "電話で確認" not in staff.get(location).get_data(as_text=True)


def test_a_broadcast_for_later_waits_as_scheduled(staff, app):
    page = _compose(staff, app, send_at="2027-02-01T17:00").get_data(as_text=True)
    assert "2027-02-01 17:00 に送信予約" in page
    staff.post("/send/commit", data=_confirm_fields(staff, page))
    row = app.extensions["test_db"].conn.execute("SELECT state, scheduled_at FROM broadcasts").fetchone()
    assert row["state"] == "scheduled" and row["scheduled_at"] > 1_800_000_000


@pytest.mark.parametrize("path", GET_PAGES)
def test_every_page_also_opens_in_english(admin, path):
    admin.post("/language", data={"lang": "en", "csrf_token": token(admin, "/")})
    response = admin.get(path)
    assert response.status_code == 200
    if path.startswith("/api") or path.endswith("export"):
        return
    page = response.get_data(as_text=True)
    assert 'lang="en"' in page and "Log out" in page


def test_the_dashboard_runs_and_records_the_readiness_check(staff, app):
    page = staff.post("/check", data={"csrf_token": token(staff, "/")},
                      follow_redirects=True).get_data(as_text=True)
    assert "点検結果：異常" in page             # no daemon has ever run on this database
    assert "デーモンが一度も動いていません" in page
    assert count(app, "check_runs") == 1
