"""ETWS warnings (appliance.etws) and the calls to silent patients (appliance.ringing), on a
real database with an injected clock: one event per quake, the wait before staff are asked,
nothing sent without a person's answer unless an admin chose so, the buzzer once per event;
who is rung, when not, and that a modem with SMS due rings nobody. The daemon and the
simulated modem carry both end to end in test_phone_e2e.py."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from gpiozero.pins.mock import MockFactory

from appliance import (broadcasts, budget, config as config_mod, contacts, etws, outbox,
                       ringing, sms_commands, staff_phones, templates, users)
from appliance.config import GpioConfig
from appliance.db import connect, write
from appliance.panel import Panel, PanelService
from modem import cbs
from tests.helpers import wait_for

NURSE = "+819011112222"
T0 = dt.datetime(2030, 3, 11, 14, 46, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "t.toml").write_text(
        'database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n'
        '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(tmp_path / "t.toml")
    db = connect(config.database)
    nurse, _ = users.create_user(db, "kango", "staff", actor="t")
    staff_phones.add(db, nurse.id, NURSE, "1234", actor="t", now=T0)
    group = contacts.create_group(db, "月水金 午前", actor="t", kind="shift")
    for i in range(3):
        contacts.add_contact(db, name=f"患者{i}", phone=f"090-2000-000{i}", actor="t",
                             group_ids=[group.id])
    templates.create_template(db, "地震・安否確認", "【{clinic}】{name}様 ご無事ですか。", actor="t",
                              clinic=config.clinic_name, priority="emergency",
                              group_ids=[group.id])
    yield config, db
    db.conn.close()


def warning(kind: str, serial: int = 1, text: str = "緊急地震速報") -> cbs.Broadcast:
    return cbs.Broadcast(message_id=cbs.TYPE_IDS[kind], serial=serial, dcs=0x48, text=text,
                         pages=1)


def hear(config, db, w: cbs.Broadcast, at: float) -> int | None:
    with write(db) as conn:
        return etws.record(conn, config, "m0", w, at)


def run_due(config, db, at: float) -> list[int]:
    with write(db) as conn:
        return etws.run_due(conn, config, at)


def to_nurse(db) -> list[str]:
    return [r[0] for r in db.conn.execute(
        "SELECT text FROM recipients WHERE phone = ? ORDER BY id", [NURSE])]


def patient_broadcasts(db) -> int:
    return db.conn.execute("SELECT count(*) FROM broadcasts WHERE origin IS NULL").fetchone()[0]


# -- ETWS -----------------------------------------------------------------------------------

def test_staff_are_asked_only_after_the_wait_and_nothing_goes_to_patients(setup):
    config, db = setup
    hear(config, db, warning("earthquake"), T0)
    assert run_due(config, db, T0 + 9 * 60) == [] and to_nurse(db) == []   # 10 min by default
    run_due(config, db, T0 + 10 * 60)
    (asked,) = to_nurse(db)
    assert asked.startswith("【つなぐ透析クリニック】緊急地震速報を受信しました（14:46）")
    assert "地震・安否確認 を 月水金 午前（3名）に送る場合は 10分以内に" in asked
    run_due(config, db, T0 + 60 * 60)
    assert len(to_nurse(db)) == 1 and patient_broadcasts(db) == 0   # asked once, sent never
    code = re.search(r"以内に (\d{4}) と返信", asked).group(1)
    with write(db) as conn:
        assert sms_commands.receive(conn, config, sender=NURSE, text=code, sent_at=T0 + 700,
                                    now=T0 + 700)
    assert patient_broadcasts(db) == 1


def test_warnings_within_six_hours_are_one_event_and_a_later_one_opens_another(setup):
    config, db = setup
    hear(config, db, warning("earthquake", 1), T0)
    hear(config, db, warning("earthquake", 1), T0 + 5)          # the network's repeat
    hear(config, db, warning("tsunami", 2, "津波警報"), T0 + 3600)
    events = etws.open_events(db.conn, config, T0 + 3600)
    assert len(events) == 1 and [w["warning_type"] for w in events[0]["warnings"]] == [
        "earthquake", "tsunami"]
    assert events[0]["warnings"][0]["repeats"] == 1
    hear(config, db, warning("earthquake", 3), T0 + 6 * 3600 + 1)
    assert db.conn.execute("SELECT count(*) FROM warning_events").fetchone()[0] == 2


def test_the_test_message_4355_is_kept_but_acts_on_nothing_unless_chosen(setup):
    config, db = setup
    assert cbs.TYPE_IDS["test"] == 4355
    hear(config, db, warning("test", text="ETWS TEST"), T0)
    assert etws.open_events(db.conn, config, T0) == []
    assert etws.latest(db.conn)["message_id"] == 4355       # proof that warnings reach us


def test_automatic_sending_only_for_the_types_an_admin_chose(setup, tmp_path):
    config, db = setup
    auto = dataclasses.replace(config, etws=dataclasses.replace(
        config.etws, auto_send=("tsunami",)))
    hear(auto, db, warning("earthquake"), T0)
    run_due(auto, db, T0 + 600)
    assert patient_broadcasts(db) == 0
    hear(auto, db, warning("tsunami", 2), T0 + 7 * 3600)
    (sent,) = run_due(auto, db, T0 + 7 * 3600 + 600)
    assert patient_broadcasts(db) == 1
    assert f"自動で送り始めました（#{sent}）" in to_nurse(db)[-1]
    with pytest.raises(config_mod.ConfigError, match="etws.auto_send"):
        (tmp_path / "bad.toml").write_text(
            'database = "t.db"\n[etws]\ntypes = ["earthquake"]\nauto_send = ["tsunami"]\n'
            '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
        config_mod.load(tmp_path / "bad.toml")


def test_a_missing_template_is_said_to_staff_instead_of_a_code(setup):
    config, db = setup
    other = dataclasses.replace(config, etws=dataclasses.replace(config.etws, template="ない"))
    hear(other, db, warning("earthquake"), T0)
    run_due(other, db, T0 + 600)
    assert "テンプレート「ない」がありません" in to_nurse(db)[0]
    assert db.conn.execute("SELECT count(*) FROM sms_confirmations").fetchone()[0] == 0


def test_the_buzzer_sounds_once_per_warning_event(setup):
    config, db = setup
    factory = MockFactory()
    gpio = GpioConfig(enabled=True, button_pin=17, button_hold_seconds=0.1,
                      cooldown_seconds=60, green_led_pin=27, red_led_pin=22, buzzer_pin=23)
    service = PanelService(dataclasses.replace(config, gpio=gpio),
                           panel_factory=lambda g, on_test_request: Panel(
                               g, on_test_request=on_test_request, pin_factory=factory))
    service.panel = Panel(gpio, on_test_request=lambda: None, pin_factory=factory)
    try:
        assert service.sound_warnings(db, T0) == []
        event = hear(config, db, warning("earthquake"), T0 + 1)
        assert service.sound_warnings(db, T0 + 2) == [1] and event
        wait_for(lambda: len(factory.pin(23).states) >= 6, 5, message="the buzzer sounding")
        assert service.sound_warnings(db, T0 + 3) == []
    finally:
        service.panel.close()
        factory.reset()


# -- ringing ----------------------------------------------------------------------------------

def sent_broadcast(config, db, *, priority: str, at: float, ring: bool | None = None) -> int:
    group = contacts.get_group_by_name(db, "月水金 午前")
    p = broadcasts.plan(db.conn, config, text="{name}様 停電です", group_ids=[group.id],
                        priority=priority, now=at)
    with write(db) as conn:
        broadcast_id = broadcasts.create(conn, p, title="停電", actor="t", now=at,
                                         ring_if_no_answer=ring)
        conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = ?, "
                     "claimed_at = ? WHERE broadcast_id = ?", [at, at, broadcast_id])
    return broadcast_id


def due(config, db, at: float) -> list[str]:
    return [r["phone"] for r in ringing.due(db.conn, config, at, limit=10)]


def test_an_emergency_rings_its_silent_after_15_minutes_a_routine_one_does_not(setup):
    config, db = setup
    noon = T0 - 2 * 3600
    sent_broadcast(config, db, priority="routine", at=noon)
    assert due(config, db, noon + 3600) == []
    emergency = sent_broadcast(config, db, priority="emergency", at=noon)
    assert due(config, db, noon + 14 * 60) == []
    assert len(due(config, db, noon + 15 * 60)) == 3
    with write(db) as conn:   # one delivered, one replied: only the third is silent
        conn.execute("UPDATE recipients SET state = 'delivered' WHERE phone = '+819020000000'")
        conn.execute("UPDATE recipients SET acknowledged_at = ? WHERE phone = '+819020000001' "
                     "AND broadcast_id = ?", [noon + 60, emergency])
    assert due(config, db, noon + 15 * 60) == ["+819020000002"]


def test_nobody_is_rung_who_said_no_twice_or_in_the_quiet_hours(setup):
    config, db = setup
    noon = T0 - 2 * 3600
    sent_broadcast(config, db, priority="emergency", at=noon)
    opted = contacts.find_by_phone(db, "+819020000000")
    contacts.update_contact(db, opted.id, actor="t", no_ring=True)
    assert "+819020000000" not in due(config, db, noon + 900)
    (first, *_) = ringing.due(db.conn, config, noon + 900)
    with write(db) as conn:
        call = ringing.start(conn, first, "m0", noon + 900)
        ringing.finish(conn, call, "rang", now=noon + 930)
        assert ringing.start(conn, first, "m0", noon + 931) is None     # never twice
    assert first["phone"] not in due(config, db, noon + 960)
    evening = dt.datetime(2030, 3, 11, 21, 30, tzinfo=config.zone).timestamp()
    sent_broadcast(config, db, priority="emergency", at=evening - 3600)
    assert due(config, db, evening) == []                    # 21:00-08:00 by default


def test_a_modem_with_sms_due_rings_nobody(setup):
    config, db = setup
    noon = T0 - 2 * 3600
    sent_broadcast(config, db, priority="emergency", at=noon)
    budget_left = budget.remaining(db.conn, config.modems[0], noon + 900)
    assert not outbox.claimable(db.conn, "m0", noon + 900, max_parts=budget_left)
    group = contacts.get_group_by_name(db, "月水金 午前")
    p = broadcasts.plan(db.conn, config, text="次の連絡", group_ids=[group.id], now=noon + 899)
    with write(db) as conn:
        broadcasts.create(conn, p, title="次", actor="t", now=noon + 899)
    # The Ringer asks this before it hands a call to a modem, and again during the call.
    assert outbox.claimable(db.conn, "m0", noon + 900, max_parts=budget_left)
    assert not outbox.claimable(db.conn, "m0", noon + 900, max_parts=0)   # no budget: free


def test_a_call_the_daemon_stopped_in_is_kept_unknown_never_rung_again(setup):
    config, db = setup
    noon = T0 - 2 * 3600
    sent_broadcast(config, db, priority="emergency", at=noon)
    (first,) = ringing.due(db.conn, config, noon + 900)
    with write(db) as conn:
        ringing.start(conn, first, "m0", noon + 900)
        assert ringing.settle_interrupted(conn, noon + 1000) == 1
    assert ringing.for_recipients(db.conn, [first["id"]])[first["id"]]["outcome"] == "unknown"
    assert first["phone"] not in due(config, db, noon + 1100)
