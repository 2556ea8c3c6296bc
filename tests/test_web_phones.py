"""Issue 14 in the web UI: staff phones on the account and users pages (an admin allows a
phone stopped by wrong PINs again), the red banner and the prepared message after an
earthquake warning, commands from phones on the dashboard, and the short calls to silent
patients on the broadcast page and the call list."""
from __future__ import annotations

import re

import pytest

from appliance import broadcasts, contacts, etws, ringing, sms_commands, staff_phones, templates
from appliance.db import write
from modem import cbs
from tests import web_support
from tests.web_support import ADMIN, STAFF, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures

NURSE = "+819011112222"


def test_staff_register_their_own_phone_with_their_password(web, staff):
    page = staff.get("/account").get_data(as_text=True)
    assert "携帯からSMSで操作" in page and "携帯を登録する" in page
    data = {"phone": "090-1111-2222", "pin": "１２３４", "on_call": "1"}
    post_form(staff, "/account/phones", {**data, "password": "wrong"}, form_page="/account")
    assert staff_phones.find(web.db.conn, NURSE) is None          # the password is asked
    post_form(staff, "/account/phones", {**data, "password": STAFF[1]}, form_page="/account")
    found = staff_phones.find(web.db.conn, NURSE)
    assert found.username == STAFF[0] and found.on_call
    assert "1234" not in web.db.conn.execute("SELECT pin_hash FROM staff_phones").fetchone()[0]
    page = staff.get("/account").get_data(as_text=True)
    assert "090-1111-2222" in page and "操作できます" in page
    post_form(staff, "/account/phones", {"phone": "090-3333-4444", "pin": "12",
                                         "password": STAFF[1]}, form_page="/account")
    assert "暗証番号は4〜8桁の数字にしてください" in staff.get("/account").get_data(as_text=True)
    assert "staff_phone_add" in web.audit_actions()


def test_an_admin_allows_a_phone_stopped_by_wrong_pins_again_staff_cannot(web, admin, staff):
    nurse = staff_phones.add(web.db, STAFF[0], NURSE, "1234", actor="t", now=web.clock.t)
    with write(web.db) as conn:
        for _ in range(3):
            staff_phones.check_pin(conn, nurse, "0000", limit=3, now=web.clock.t)
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "停止中（暗証番号の誤り）" in page and "操作を再開" in page
    path = f"/phones/{nurse.id}/enable"
    assert post_form(staff, path, form_page="/account").status_code == 404
    assert not staff_phones.get(web.db, nurse.id).obeyed
    post_form(admin, path, {"back": "users"}, form_page="/admin/users")
    assert staff_phones.get(web.db, nurse.id).obeyed
    assert "staff_phone_enable" in web.audit_actions()
    # Another user's phone is not staff's to change.
    other = staff_phones.add(web.db, ADMIN[0], "090-5555-6666", "1234", actor="t",
                             now=web.clock.t)
    assert post_form(staff, f"/phones/{other.id}/remove", form_page="/account"
                     ).status_code == 403


def quake(web) -> int:
    templates.create_template(web.db, "地震・安否確認", "{name}様 ご無事ですか。", actor="t",
                              clinic=web.config.clinic_name, priority="emergency",
                              group_ids=[web.group_id])
    warning = cbs.Broadcast(message_id=4352, serial=1, dcs=0x48, pages=1,
                            text="緊急地震速報 強い揺れに備えてください")
    with write(web.db) as conn:
        etws.record(conn, web.config, "m0", warning, web.clock.t)
    return etws.open_events(web.db.conn, web.config, web.clock.t)[0]["id"]


def test_a_warning_shows_a_red_banner_and_a_prepared_message_staff_can_send(web, staff):
    event_id = quake(web)
    page = staff.get("/").get_data(as_text=True)
    assert 'class="banner warning-event"' in page and "緊急地震速報を受信しました" in page
    assert "緊急地震速報 強い揺れに備えてください" in page and f"/warnings/{event_id}" in page
    draft = staff.get(f"/warnings/{event_id}").get_data(as_text=True)
    assert "地震・安否確認" in draft and "月水金 午前（1名）" in draft
    assert "〇〇様 ご無事ですか。" in draft
    assert web.count("broadcasts") == 0                      # a draft, not a send
    response = post_form(staff, f"/warnings/{event_id}/send", form_page=f"/warnings/{event_id}")
    (sent,) = [r[0] for r in web.db.conn.execute("SELECT id FROM broadcasts")]
    assert response.headers["Location"].endswith(f"/broadcasts/{sent}")
    assert broadcasts.get(web.db.conn, sent)["request_key"] == etws.request_key(event_id)
    post_form(staff, f"/warnings/{event_id}/send", form_page=f"/warnings/{event_id}")
    assert web.count("broadcasts") == 1                      # twice: sent once
    assert "安否確認を送信しています" in staff.get("/").get_data(as_text=True)


def test_closing_a_warning_removes_its_banner(web, staff):
    event_id = quake(web)
    post_form(staff, f"/warnings/{event_id}/close", form_page=f"/warnings/{event_id}")
    assert "warning-event" not in staff.get("/").get_data(as_text=True)
    assert "warning_closed" in web.audit_actions()


def test_the_dashboard_lists_commands_from_phones_with_the_pin_hidden(web, staff):
    staff_phones.add(web.db, STAFF[0], NURSE, "1234", actor="t", now=web.clock.t)
    with write(web.db) as conn:
        sms_commands.receive(conn, web.config, sender=NURSE, text="中止 99 1234",
                             sent_at=web.clock.t, now=web.clock.t)
        sms_commands.receive(conn, web.config, sender="+819055556666", text="状況",
                             sent_at=web.clock.t, now=web.clock.t)
    page = staff.get("/").get_data(as_text=True)
    assert "携帯からの操作（24時間以内）" in page
    assert "中止 99 ****" in page and "1234" not in page.split("携帯からの操作（24時間以内）")[1]
    assert "登録のない番号" in page


def test_the_broadcast_page_and_call_list_show_the_call_and_staff_may_turn_ringing_off(
        web, staff):
    p = broadcasts.plan(web.db.conn, web.config, text="{name}様 停電です",
                        group_ids=[web.group_id], priority="emergency", now=web.clock.t)
    with write(web.db) as conn:
        broadcast_id = broadcasts.create(conn, p, title="停電", actor="t", now=web.clock.t)
        conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = ?",
                     [web.clock.t])
        (recipient,) = conn.execute("SELECT id, broadcast_id, phone FROM recipients").fetchall()
        call = ringing.start(conn, recipient, "m0", web.clock.t + 900)
        ringing.finish(conn, call, "busy", now=web.clock.t + 905)
    page = staff.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "本体から電話を鳴らしました：話し中" in page
    assert "返信がない人に電話を鳴らす：" in page
    assert "本体から電話を鳴らしました：話し中" in staff.get(
        f"/broadcasts/{broadcast_id}/calls").get_data(as_text=True)
    post_form(staff, f"/broadcasts/{broadcast_id}/ring/off",
              form_page=f"/broadcasts/{broadcast_id}")
    assert broadcasts.get(web.db.conn, broadcast_id)["ring_if_no_answer"] == 0
    assert "broadcast_ring" in web.audit_actions()


def test_a_contact_may_be_never_rung(web, staff):
    path = f"/contacts/{web.contact_id}"
    assert "返信がなくても電話を鳴らさない" in staff.get(path).get_data(as_text=True)
    post_form(staff, path, {"name": "山田 太郎", "phone": "090-1234-5678", "active": "y",
                            "no_ring": "y", "groups": str(web.group_id)})
    assert contacts.get_contact(web.db, web.contact_id).no_ring


@pytest.mark.parametrize("priority, choice, rings", [
    ("emergency", None, True), ("routine", None, False),
    ("routine", "on", True), ("emergency", "off", False)])
def test_the_compose_page_chooses_whether_silent_patients_are_rung_and_confirm_says_so(
        web, staff, priority, choice, rings):
    data = {"text": "{name}様 本日の透析は中止です。", "groups": str(web.group_id),
            "priority": priority, "template_id": "0", **({"ring": choice} if choice else {})}
    confirm = post_form(staff, "/send", data, form_page="/send").get_data(as_text=True)
    said = "本体から一度だけ電話を鳴らします" if rings else "本体から電話は鳴らしません"
    assert said in confirm
    form = confirm.split('id="confirm-form"')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    post_form(staff, "/send/commit", fields, form_page="/send")
    (row,) = web.db.conn.execute("SELECT ring_if_no_answer FROM broadcasts").fetchall()
    assert bool(row[0]) is rings


def test_answers_to_staff_phones_stay_out_of_the_dashboard_and_history_until_asked_for(
        web, staff):
    staff_phones.add(web.db, STAFF[0], NURSE, "1234", actor="t", now=web.clock.t)
    with write(web.db) as conn:
        sms_commands.receive(conn, web.config, sender=NURSE, text="状況",
                             sent_at=web.clock.t, now=web.clock.t)
    answer = web.db.conn.execute("SELECT id FROM broadcasts WHERE origin = 'sms_reply'"
                                 ).fetchone()[0]
    link = f'href="/broadcasts/{answer}"'
    dashboard = staff.get("/").get_data(as_text=True)
    assert link not in dashboard and "状況" in dashboard   # the command is listed, its answer not
    history = staff.get("/broadcasts").get_data(as_text=True)
    assert link not in history and "スマホ操作への返答（1件）も表示する" in history
    shown = staff.get("/broadcasts?phone_replies=1").get_data(as_text=True)
    assert link in shown and "スマホ操作への返答を隠す" in shown
