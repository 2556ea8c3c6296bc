"""Issue 14 end to end: `tsunagu daemon` and `tsunagu sim` as subprocesses. A staff phone
commands the appliance by SMS (the simulated network carries its messages both ways); an
earthquake warning arrives as a cell broadcast; a patient who does not answer is rung.
Outcomes are read from the simulator's network log and the database, as staff would see
them — nothing of ours is mocked, nothing waits on a sleep."""
from __future__ import annotations

import re
import time

from appliance import audit, broadcasts, contacts, etws, staff_phones, templates, users
from appliance.db import write
from tests.daemon_harness import messages, wait_until

NURSE = "+819011112222"
STRANGER = "+819055556666"
PIN = "1234"
CLINIC = "つなぐ透析クリニック"


def seed_clinic(rig) -> dict[str, list[str]]:
    """Three shifts of patients, a nurse with a registered phone, the power-cut template;
    the patients' numbers per group."""
    db = rig.db
    numbers: dict[str, list[str]] = {}
    for g, (group, count) in enumerate([("月水金 午前", 3), ("月水金 午後", 2),
                                        ("火木土 午前", 2)]):
        created = contacts.create_group(db, group, actor="t", kind="shift")
        numbers[group] = []
        for i in range(count):
            contact = contacts.add_contact(db, name=f"患者{g}{i} 𠮷田",
                                           phone=f"090-7000-{g}{i:03d}", actor="t",
                                           group_ids=[created.id])
            numbers[group].append(contact.phone)
    nurse, _ = users.create_user(db, "kango", "staff", actor="t")
    staff_phones.add(db, nurse.id, NURSE, PIN, actor="t", now=0)
    templates.create_template(db, "停電・透析中止", "【{clinic}】{name}様 停電のため本日の透析は"
                              "中止です。", actor="t", clinic=CLINIC, priority="emergency")
    return numbers


def to(rig, number: str) -> list[str]:
    """The texts that reached *number* on the simulated network, oldest first."""
    return [m["text"] for m in messages(rig.sims) if m["to"] == number]


def wait_text(rig, number: str, count: int, what: str) -> str:
    wait_until(lambda: len(to(rig, number)) >= count or not rig.daemon.alive(), 30, what)
    assert rig.daemon.alive(), rig.daemon.stderr()[-3000:]
    return to(rig, number)[count - 1]


def refusals(rig) -> list[dict]:
    return [e.detail | {"actor": e.actor} for e in audit.entries(rig.db, limit=500)
            if e.action == "sms_command_refused"]


def test_a_staff_phone_sends_a_broadcast_by_sms_after_the_preview_and_its_code(rig_factory):
    rig = rig_factory()
    numbers = seed_clinic(rig)
    rig.daemon.start()
    control = rig.sims[0].control()

    control.inject_sms(sender=NURSE, text="送信 停電・透析中止 月水金 1234")
    preview = wait_text(rig, NURSE, 1, "the preview on the nurse's phone")
    assert "停電・透析中止 を 月水金 午前・月水金 午後 の5名に送ります" in preview
    assert f"「【{CLINIC}】〇〇様 停電のため本日の透析は中止です。」" in preview
    code = re.search(r"以内に (\d{4}) と返信", preview).group(1)
    patients = numbers["月水金 午前"] + numbers["月水金 午後"]
    assert not any(to(rig, n) for n in patients)     # nothing before the code comes back

    control.inject_sms(sender=NURSE, text=code.translate(str.maketrans("0123456789",
                                                                       "０１２３４５６７８９")))
    started = wait_text(rig, NURSE, 2, "the nurse told the sending began")
    broadcast_id = int(re.search(r"送信を始めました（#(\d+)、5名）", started).group(1))
    wait_until(lambda: all(to(rig, n) for n in patients), 30, "every patient of 月水金")
    assert all(len(to(rig, n)) == 1 and "停電のため本日の透析は中止です" in to(rig, n)[0]
               for n in patients)
    assert not any(to(rig, n) for n in numbers["火木土 午前"])
    sent = broadcasts.get(rig.db.conn, broadcast_id)
    assert sent["created_by"] == "kango" and sent["priority"] == "emergency"
    steps = {e.action for e in audit.entries(rig.db, limit=500, actor="kango")}
    assert {"sms_command", "sms_send_requested", "sms_send_confirmed",
            "broadcast_create"} <= steps
    # The commands are not patients' replies.
    assert rig.db.conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0] == 0


def test_an_unknown_number_a_wrong_pin_and_an_expired_code_are_refused_and_audited(
        rig_factory):
    rig = rig_factory(sections={"sms_commands": {"code_minutes": 0.02}})   # 1.2 s to answer
    numbers = seed_clinic(rig)
    rig.daemon.start()
    control = rig.sims[0].control()

    control.inject_sms(sender=STRANGER, text="送信 停電・透析中止 月水金 1234")
    wait_until(lambda: refusals(rig), 30, "the stranger's command audited")
    assert refusals(rig)[0]["reason"] == "unknown_number"
    # Never obeyed, never answered, and in the inbox like any message.
    wait_until(lambda: rig.db.conn.execute(
        "SELECT count(*) FROM inbound_messages WHERE number = ?", [STRANGER]).fetchone()[0],
        30, "the stranger's SMS in the inbox")
    assert to(rig, STRANGER) == []

    control.inject_sms(sender=NURSE, text="送信 停電・透析中止 月水金 9999")
    assert "暗証番号が違います（あと2回" in wait_text(rig, NURSE, 1, "the wrong PIN answered")

    control.inject_sms(sender=NURSE, text="送信 停電・透析中止 月水金 1234")
    preview = wait_text(rig, NURSE, 2, "the preview")
    code = re.search(r"以内に (\d{4}) と返信", preview).group(1)
    # The code's 1.2 s are over once the phone has read the preview: wait on the clock.
    asked = rig.db.conn.execute("SELECT expires_at FROM sms_confirmations ORDER BY id DESC "
                                "LIMIT 1").fetchone()[0]
    wait_until(lambda: time.time() > asked, 10, "the code's time to run out")
    control.inject_sms(sender=NURSE, text=code)
    assert "期限が切れています" in wait_text(rig, NURSE, 3, "the expired code answered")

    reasons = [(r["actor"], r["reason"]) for r in reversed(refusals(rig))]
    assert reasons == [("sms", "unknown_number"), ("kango", "wrong_pin"),
                       ("kango", "code_expired")]
    patients = [n for group in numbers.values() for n in group]
    assert not any(to(rig, n) for n in patients)
    assert rig.db.conn.execute("SELECT count(*) FROM broadcasts WHERE origin IS NULL"
                               ).fetchone()[0] == 0


def test_an_earthquake_warning_prompts_the_on_call_phone_and_sends_only_on_its_code(
        rig_factory):
    rig = rig_factory(sections={"etws": {"prompt_after_minutes": 0, "groups": ["月水金 午前"]}})
    numbers = seed_clinic(rig)
    templates.create_template(rig.db, "地震・安否確認", "【{clinic}】{name}様 地震がありました。"
                              "ご無事ですか。", actor="t", clinic=CLINIC, priority="emergency",
                              choices=["無事", "けがをした"])
    rig.daemon.start()
    wait_until(lambda: rig.db.conn.execute(
        "SELECT count(*) FROM modem_status WHERE cell_broadcasts = 'subscribed'"
    ).fetchone()[0], 30,
        "the modem subscribed to ETWS")
    control = rig.sims[0].control()

    control.inject_cbs(text="緊急地震速報 強い揺れに備えてください（気象庁）" * 3,
                       etws="earthquake")        # three pages, joined again
    asked = wait_text(rig, NURSE, 1, "the on-call phone asked")
    assert asked.startswith(f"【{CLINIC}】緊急地震速報を受信しました")
    assert "地震・安否確認 を 月水金 午前（3名）に送る場合は" in asked
    (event,) = etws.open_events(rig.db.conn, rig.config, time.time())    # the banner's
    assert event["warnings"][0]["text"] == "緊急地震速報 強い揺れに備えてください（気象庁）" * 3
    draft = etws.draft(rig.db.conn, rig.config, time.time())              # the web UI's
    assert draft.plan.people == 3 and draft.args["priority"] == "emergency"
    patients = [n for group in numbers.values() for n in group]
    assert not any(to(rig, n) for n in patients)   # nobody without a person's answer
    # A second warning of the same quake is the same event: no second prompt.
    control.inject_cbs(text="緊急地震速報（続報）", etws="earthquake")
    wait_until(lambda: rig.db.conn.execute("SELECT count(*) FROM warnings").fetchone()[0]
               == 2, 30, "the second warning kept")
    assert len(etws.open_events(rig.db.conn, rig.config, time.time())) == 1

    code = re.search(r"以内に (\d{4}) と返信", asked).group(1)
    control.inject_sms(sender=NURSE, text=code)
    wait_until(lambda: all(to(rig, n) for n in numbers["月水金 午前"]), 30,
               "the safety check reached 月水金 午前")
    assert not any(to(rig, n) for n in numbers["月水金 午後"] + numbers["火木土 午前"])
    assert len(to(rig, NURSE)) == 2       # the prompt, then "sending began": nothing else
    sent = etws.open_events(rig.db.conn, rig.config, time.time())[0]["broadcast_id"]
    assert broadcasts.get(rig.db.conn, sent)["created_by"] == "kango"
    actions = {e.action for e in audit.entries(rig.db, limit=500)}
    assert {"warning_received", "warning_prompt", "sms_send_confirmed"} <= actions


def test_a_patient_with_no_report_and_no_reply_is_rung_once(rig_factory):
    rig = rig_factory(sections={"ring": {"after_minutes": 0.05, "ring_seconds": 2,
                                         "quiet_hours": ""}})
    numbers = seed_clinic(rig)
    silent, busy, *read = numbers["月水金 午前"] + numbers["月水金 午後"]
    control = rig.sims[0].control()
    control.set_outcome(number=silent, outcome="none")          # the SMS went; no report ever comes
    control.set_outcome(number=busy, outcome="none")
    control.set_call_outcome(number=silent, outcome="no_answer")
    control.set_call_outcome(number=busy, outcome="busy")
    group_ids = [g.id for g in contacts.list_groups(rig.db) if g.name.startswith("月水金")]
    p = broadcasts.plan(rig.db.conn, rig.config, text="【{clinic}】{name}様 停電です。",
                        group_ids=group_ids, priority="emergency", now=time.time())
    with write(rig.db) as conn:
        broadcast_id = broadcasts.create(conn, p, title="停電", actor="t", now=time.time())
    assert broadcasts.get(rig.db.conn, broadcast_id)["ring_if_no_answer"] == 1  # an emergency's
    rig.daemon.start()

    def outcomes() -> dict[str, str]:
        return {r["phone"]: r["outcome"] for r in rig.db.conn.execute(
            "SELECT phone, outcome FROM ring_calls WHERE state = 'done'")}
    wait_until(lambda: len(outcomes()) == 2 or not rig.daemon.alive(), 60,
               "both silent patients rung")
    assert outcomes() == {silent: "rang", busy: "busy"}
    dialled = [e["to"] for e in rig.sims[0].events("call")]
    assert sorted(dialled) == sorted([silent, busy])      # once each; those who read, never
    ended = {e["number"]: e["how"] for e in rig.sims[0].events("call_end")}
    assert ended[silent] == "hung_up" and ended[busy] == "BUSY"
    rows = {r["phone"]: r for r in broadcasts.call_list(rig.db.conn, broadcast_id)}
    assert rows[silent]["ring"]["outcome"] == "rang" and rows[busy]["ring"]["outcome"] == "busy"
    assert all(n not in rows or rows[n]["ring"] is None for n in read)
