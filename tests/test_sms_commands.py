"""Commands by SMS from staff phones (appliance.sms_commands), on a real database with an
injected clock: who is obeyed, the preview and its one-time code, PINs, limits, and that a
command is never taken for a patient's reply. The daemon and a simulated modem carry the
same flow end to end in test_phone_e2e.py."""
from __future__ import annotations

import json

import pytest

from appliance import (audit, broadcasts, config as config_mod, contacts, outbox,
                       sms_commands, staff_phones, templates, users)
from appliance.db import connect, write

NURSE_PHONE = "+819011112222"
OTHER_STAFF = "+819033334444"
STRANGER = "+819055556666"
T0 = 1_800_000_000.0


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "t.toml").write_text(
        'database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n'
        '[sms_commands]\nper_10_minutes = 10\n'
        '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(tmp_path / "t.toml")
    db = connect(config.database)
    nurse, _ = users.create_user(db, "kango", "staff", actor="t")
    other, _ = users.create_user(db, "jimu", "office", actor="t")
    staff_phones.add(db, nurse.id, "090-1111-2222", "1234", actor="t", now=T0)
    staff_phones.add(db, other.id, "090-3333-4444", "５６７８", actor="t", now=T0)
    am = contacts.create_group(db, "月水金 午前", actor="t", kind="shift")
    pm = contacts.create_group(db, "月水金 午後", actor="t", kind="shift")
    tts = contacts.create_group(db, "火木土 午前", actor="t", kind="shift")
    for i, group in enumerate([am, am, pm, tts]):
        contacts.add_contact(db, name=f"患者{i} 𠮷田", phone=f"090-2000-000{i}", actor="t",
                             group_ids=[group.id])
    templates.create_template(db, "停電・透析中止", "【{clinic}】{name}様 停電のため透析を中止します。",
                              actor="t", clinic=config.clinic_name, priority="emergency",
                              choices=["来院できる", "来院できない"], group_ids=[am.id])
    yield config, db
    db.conn.close()


def sms(setup, text: str, *, sender: str = NURSE_PHONE, at: float = T0,
        sent_at: float | None = None) -> bool:
    config, db = setup
    with write(db) as conn:
        return sms_commands.receive(conn, config, sender=sender, text=text,
                                    sent_at=at if sent_at is None else sent_at, now=at)


def replies(db, number: str = NURSE_PHONE) -> list[str]:
    """What was queued to *number* as an answer, oldest first."""
    return [r[0] for r in db.conn.execute(
        "SELECT r.text FROM recipients r JOIN broadcasts b ON b.id = r.broadcast_id "
        "WHERE b.origin = 'sms_reply' AND r.phone = ? ORDER BY r.id", [number])]


def patient_broadcasts(db) -> list[dict]:
    return [dict(r) for r in db.conn.execute("SELECT * FROM broadcasts WHERE origin IS NULL")]


def code_in(text: str) -> str:
    import re
    return re.search(r"以内に (\d{4}) と返信", text).group(1)


def actions(db, actor: str | None = None) -> list[str]:
    return [e.action for e in reversed(audit.entries(db, limit=200, actor=actor))]


def test_a_staff_phone_sends_after_the_preview_and_its_code(setup):
    config, db = setup
    assert sms(setup, "送信 停電・透析中止 月水金 1234")
    (preview,) = replies(db)
    assert "停電・透析中止 を 月水金 午前・月水金 午後 の3名に" in preview
    assert "SMS3通" in preview and "約1分" in preview and "本日の残り200通" in preview
    assert "【つなぐ透析クリニック】〇〇様 停電のため透析を中止します。" in preview  # no patient's name
    assert patient_broadcasts(db) == []        # nothing goes before the code comes back
    assert sms(setup, code_in(preview), at=T0 + 60)
    (sent,) = patient_broadcasts(db)
    assert sent["created_by"] == "kango" and sent["priority"] == "emergency"
    people = broadcasts.recipients(db.conn, sent["id"])
    assert sorted(p["phone"] for p in people) == ["+819020000000", "+819020000001",
                                                  "+819020000002"]
    assert "番号で返信してください\n1 来院できる" in people[0]["text"]
    assert f"送信を始めました（#{sent['id']}、3名）" in replies(db)[-1]
    assert {"sms_command", "sms_send_requested", "sms_send_confirmed", "broadcast_create"} <= \
        set(actions(db, "kango"))   # every step as that user
    # The command is not in the inbox: a staff phone's command is not a patient's reply.
    assert db.conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0] == 0
    logged = [r["text"] for r in sms_commands.recent(db.conn, T0 + 100)]
    assert logged == ["****", "送信 停電・透析中止 月水金 ****"]   # the PIN is never kept


def test_full_width_digits_and_spaces_and_english_words_are_understood(setup):
    config, db = setup
    assert sms(setup, "送信　停電・透析中止　月水金　午前　１２３４")
    assert "月水金 午前 の2名" in replies(db)[-1]
    assert sms(setup, f"{code_in(replies(db)[-1])}".translate(str.maketrans("0123456789",
                                                                            "０１２３４５６７８９")),
               at=T0 + 5)
    assert len(patient_broadcasts(db)) == 1
    assert sms(setup, "SEND 1 all 1234", at=T0 + 10)   # a template by its number, everyone
    assert "全員 の4名" in replies(db)[-1]
    assert sms(setup, "status", at=T0 + 11) and sms(setup, "？", at=T0 + 12)
    assert replies(db)[-1].startswith("【つなぐ透析クリニック】使える操作")


def test_no_group_given_uses_the_templates_own(setup):
    config, db = setup
    assert sms(setup, "送信 停電・透析中止 1234")
    assert "月水金 午前 の2名" in replies(db)[-1]


def test_status_says_whether_it_can_send_each_modem_and_the_last_broadcast(setup):
    config, db = setup
    sms(setup, "送信 停電・透析中止 月水金 1234")
    sms(setup, code_in(replies(db)[-1]), at=T0 + 1)
    assert sms(setup, "状況", at=T0 + 2)
    status = replies(db)[-1]
    assert "いま送信できません" in status          # no daemon has ever run here
    assert "m0: まだ確認されていません" in status and "本日残り200通" in status
    assert "最新 #" in status and "停電・透析中止: 送信待ち 3名" in status


def test_an_unknown_number_is_never_obeyed_goes_to_the_inbox_and_is_audited(setup):
    config, db = setup
    assert not sms(setup, "送信 停電・透析中止 月水金 1234", sender=STRANGER)
    assert replies(db, STRANGER) == [] and patient_broadcasts(db) == []
    (refusal,) = [e for e in audit.entries(db) if e.action == "sms_command_refused"]
    assert refusal.detail["reason"] == "unknown_number" and refusal.detail["phone"] == STRANGER
    # A patient's four digits are a reply, not worth a line in the audit log.
    assert not sms(setup, "1234", sender=STRANGER, at=T0 + 1)
    assert len([e for e in audit.entries(db) if e.action == "sms_command_refused"]) == 1


def test_a_code_from_another_phone_sends_nothing(setup):
    config, db = setup
    sms(setup, "送信 停電・透析中止 月水金 1234")
    code = code_in(replies(db)[-1])
    assert not sms(setup, code, sender=OTHER_STAFF, at=T0 + 1)   # a reply like any other
    assert not sms(setup, code, sender=STRANGER, at=T0 + 2)
    assert patient_broadcasts(db) == []


def test_an_expired_code_is_refused_and_audited(setup):
    config, db = setup
    sms(setup, "送信 停電・透析中止 月水金 1234")
    code = code_in(replies(db)[-1])
    assert sms(setup, code, at=T0 + 10 * 60 + 1)
    assert patient_broadcasts(db) == []
    assert "期限が切れています" in replies(db)[-1]
    refused = [e for e in audit.entries(db) if e.action == "sms_command_refused"]
    assert refused[0].actor == "kango" and refused[0].detail["reason"] == "code_expired"


def test_three_wrong_codes_void_the_confirmation(setup):
    config, db = setup
    sms(setup, "送信 停電・透析中止 月水金 1234")
    code = code_in(replies(db)[-1])
    wrong = f"{(int(code) + 1) % 10000:04d}"
    for i in range(3):
        assert sms(setup, wrong, at=T0 + i + 1, sent_at=T0 + i + 1)
    assert sms(setup, code, at=T0 + 10)
    assert patient_broadcasts(db) == []
    assert "期限が切れています" in replies(db)[-1]


def test_three_wrong_pins_disable_the_number_until_an_admin_enables_it(setup):
    config, db = setup
    for i, expected in enumerate(["あと2回", "あと1回", "操作を止めました"]):
        assert sms(setup, f"中止 1 999{i}", at=T0 + i)
        assert expected in replies(db)[-1]
    phone = staff_phones.find(db.conn, NURSE_PHONE)
    assert phone.disabled_at is not None and not phone.obeyed
    told = len(replies(db))
    assert sms(setup, "送信 停電・透析中止 月水金 1234", at=T0 + 10)  # the right PIN: too late
    assert len(replies(db)) == told and patient_broadcasts(db) == []
    assert "staff_phone_disabled" in actions(db, "kango")
    staff_phones.enable(db, phone.id, actor="admin", now=T0 + 20)
    assert sms(setup, "送信 停電・透析中止 月水金 1234", at=T0 + 30)
    assert "確認:" in replies(db)[-1]


def test_cancel_uses_the_broadcast_cancel_of_every_door(setup):
    config, db = setup
    sms(setup, "送信 停電・透析中止 月水金 1234")
    sms(setup, code_in(replies(db)[-1]), at=T0 + 1)
    (sent,) = patient_broadcasts(db)
    assert sms(setup, f"中止 {sent['id']} 1234", at=T0 + 2)
    assert broadcasts.get(db.conn, sent["id"])["state"] == "cancelled"
    assert "中止しました（未送信3件を止めました）" in replies(db)[-1]
    cancel = [e for e in audit.entries(db) if e.action == "broadcast_cancel"][0]
    assert cancel.actor == "kango"
    assert sms(setup, f"中止 {sent['id']} 1234", at=T0 + 3)   # twice: refused, in Japanese
    assert "すでに「中止」です" in replies(db)[-1]


def test_the_answer_goes_before_every_other_message(setup):
    config, db = setup
    p = broadcasts.plan(db.conn, config, text="先に並んだ緊急の送信", everyone=True,
                        priority="emergency", now=T0)
    with write(db) as conn:
        broadcasts.create(conn, p, title="緊急", actor="t", now=T0 - 60)
    sms(setup, "状況")
    claim = outbox.claim(db, "m0", T0 + 1, max_parts=100)
    assert claim.phone == NURSE_PHONE and claim.priority_rank == outbox.RANK_FIRST


def test_too_many_commands_from_one_number_are_refused_and_answered_once(setup):
    config, db = setup
    for i in range(10):
        assert sms(setup, "状況", at=T0 + i, sent_at=T0 + i)
    assert sms(setup, "状況", at=T0 + 20) and sms(setup, "状況", at=T0 + 21)
    answers = replies(db)
    assert len(answers) == 11 and "操作が多すぎます" in answers[-1]
    assert sms(setup, "状況", at=T0 + 700)           # ten minutes later: answered again
    assert len(replies(db)) == 12


def test_a_command_read_twice_from_the_modem_is_handled_once(setup):
    config, db = setup
    assert sms(setup, "送信 停電・透析中止 月水金 1234", sent_at=T0 - 5)
    assert sms(setup, "送信 停電・透析中止 月水金 1234", at=T0 + 30, sent_at=T0 - 5)
    assert len(replies(db)) == 1


def test_a_deactivated_users_phone_is_not_obeyed(setup):
    config, db = setup
    users.deactivate(db, "kango", actor="t")
    assert sms(setup, "状況")
    assert replies(db) == []
    (row,) = sms_commands.recent(db.conn, T0 + 1)
    assert row["outcome"] == "refused" and row["reason"] == "inactive_user"


def test_a_staff_phones_ordinary_sms_is_a_reply_as_before(setup):
    config, db = setup
    assert not sms(setup, "了解しました")
    assert not sms(setup, "1")


@pytest.mark.parametrize("text, reason", [
    ("送信 停電・透析中止 月水金", "no_pin"),
    ("送信 ない 月水金 1234", "unknown_template"),
    ("送信 停電・透析中止 日曜 1234", "unknown_group"),
    ("中止 これ 1234", "bad_command"),
])
def test_a_command_that_cannot_be_done_says_why_in_japanese(setup, text, reason):
    config, db = setup
    assert sms(setup, text)
    (row,) = sms_commands.recent(db.conn, T0 + 1)
    assert row["reason"] == reason
    assert replies(db)[-1].startswith("【つなぐ透析クリニック】")
    assert patient_broadcasts(db) == []


def test_a_template_with_a_value_to_fill_is_refused_with_the_plans_own_words(setup):
    config, db = setup
    templates.create_template(db, "時間変更", "{time}に来院してください", actor="t",
                              clinic=config.clinic_name)
    assert sms(setup, "送信 時間変更 月水金 1234")
    assert "{time} の値が入力されていません" in replies(db)[-1]


def test_the_pin_is_hashed_like_a_password(setup):
    config, db = setup
    stored = db.conn.execute("SELECT pin_hash FROM staff_phones WHERE phone = ?",
                             [NURSE_PHONE]).fetchone()[0]
    assert stored.startswith("scrypt:") and "1234" not in stored
    assert "1234" not in json.dumps([e.detail for e in audit.entries(db, limit=500)])


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", ""])
def test_a_pin_must_be_4_to_8_digits(setup, pin):
    config, db = setup
    with pytest.raises(staff_phones.StaffPhoneError) as err:
        staff_phones.add(db, "jimu", "090-7777-8888", pin, actor="t", now=T0)
    assert err.value.field == "pin"


def test_a_number_is_registered_once_and_must_be_a_mobile(setup):
    config, db = setup
    with pytest.raises(staff_phones.StaffPhoneError, match="kango"):
        staff_phones.add(db, "jimu", "09011112222", "1234", actor="t", now=T0)
    with pytest.raises(staff_phones.StaffPhoneError) as err:
        staff_phones.add(db, "jimu", "03-1234-5678", "1234", actor="t", now=T0)
    assert err.value.field == "phone" and "固定電話" in err.value.ja


def test_the_cli_registers_a_phone_with_its_pin_lists_and_enables_it(tmp_path):
    from click.testing import CliRunner

    from appliance.cli import main
    config = tmp_path / "tsunagu.toml"
    config.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "m0"\n')
    db = connect(tmp_path / "t.db")
    users.create_user(db, "kango", "staff", actor="t")
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, ["user", "phone", *args, "--config", str(config)],
                             input=input)
    result = run("add", "kango", "090-1111-2222", "--pin-stdin", input="１２３４\n")
    assert result.exit_code == 0, result.output
    assert "+819011112222 を kango の携帯として登録しました（当番）" in result.output
    assert run("add", "kango", "090-3333-4444", "--pin-stdin", input="12\n").exit_code == 1
    found = staff_phones.find(db.conn, NURSE_PHONE)
    with write(db) as conn:
        for _ in range(3):
            staff_phones.check_pin(conn, found, "0000", limit=3, now=T0)
    assert "停止中（暗証番号の誤り）" in run("list").output
    assert run("enable", "090-1111-2222").exit_code == 0
    assert staff_phones.find(db.conn, NURSE_PHONE).obeyed
    assert "操作できます" in run("list").output
    assert run("on-call", "090-1111-2222", "off").exit_code == 0
    assert not staff_phones.find(db.conn, NURSE_PHONE).on_call
    assert run("pin", "090-1111-2222", "--pin-stdin", input="87654321\n").exit_code == 0
    with write(db) as conn:
        assert staff_phones.check_pin(conn, found, "87654321", limit=3, now=T0)[0]
    assert run("remove", "090-1111-2222").exit_code == 0
    assert staff_phones.find(db.conn, NURSE_PHONE) is None
    assert run("remove", "090-1111-2222").exit_code == 1
    assert [e.action for e in audit.entries(db, actor=None)][:5] == [
        "staff_phone_remove", "staff_phone_pin", "staff_phone_on_call", "staff_phone_enable",
        "staff_phone_disabled"]
    db.conn.close()
