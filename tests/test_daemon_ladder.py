"""The recovery ladder end to end: the real daemon and a simulated modem whose firmware hangs
so that only a power cycle clears it. The power-cycle command given to the daemon unplugs
and replugs the simulated modem, as uhubctl would cut and restore its USB power."""
from __future__ import annotations

import shlex

import pytest

from appliance import check, modem_link
from tests.daemon_harness import (messages_per_number, recipient_states, tsunagu_command,
                                  wait_until)
from tests.test_daemon_e2e import seed_patients

RECOVERY = {"rung_wait": 1, "max_resets_per_hour": 3}


def power_cycle_command() -> str:
    tsunagu = shlex.join(tsunagu_command())
    # The simulated modem's USB power goes off, and on again a moment later.
    return (f"sh -c '{tsunagu} sim-ctl --link \"$0\" unplug && sleep 0.5 && "
            f"{tsunagu} sim-ctl --link \"$0\" replug' {{link}}")


def rungs(rig) -> list[tuple[str, str | None]]:
    return [(r[0], r[1]) for r in rig.db.conn.execute(
        "SELECT rung, outcome FROM modem_recovery ORDER BY id")]


def modem_ready(rig) -> bool:
    row = rig.db.conn.execute("SELECT ready FROM modem_status").fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_a_hang_only_a_power_cycle_clears_is_cleared_and_the_broadcast_finishes(
        rig_factory, modem_model):
    rig = rig_factory(model=modem_model, send_delay=0.02, sections={"recovery": RECOVERY},
                      modem={"power_cycle_command": power_cycle_command()},
                      daemon={"poll_interval": 1})
    rig.daemon.start()
    wait_until(lambda: modem_ready(rig), 30, "the modem ready")
    control = rig.sims[0].control()
    control.hang(kind="total")          # nothing answers: not AT, not a reset
    bid = rig.broadcast(seed_patients(rig.db, 10), priority="emergency")
    rig.wait_final(bid, timeout=180)
    assert [r for r, _ in rungs(rig)] == ["resync", "reset", "power_cycle"]
    assert rungs(rig)[-1] == ("power_cycle", "recovered")
    states = recipient_states(rig.db)
    assert states["submitted"] + states["delivered"] == 10
    assert max(messages_per_number(rig.sims).values()) == 1


@pytest.mark.slow
def test_when_no_rung_helps_staff_are_told_and_the_modem_is_reset_no_more(rig_factory):
    # No reset rung (as a clinic may configure it), and a power cycle that changes nothing.
    rig = rig_factory(sections={"recovery": {**RECOVERY, "reset": False}},
                      daemon={"poll_interval": 1}, modem={"power_cycle_command": "true"})
    rig.daemon.start()
    wait_until(lambda: modem_ready(rig), 30, "the modem ready")
    rig.sims[0].control().hang(kind="total")
    wait_until(lambda: rungs(rig) and rungs(rig)[-1][0] == "gave_up", 120,
               "the ladder to give up")
    assert [r for r, _ in rungs(rig)] == ["resync", "power_cycle", "gave_up"]
    climbed = len(rungs(rig))
    # The daemon keeps looking (a person may replug the modem) but resets nothing more.
    before = rig.db.conn.execute("SELECT checked_at FROM modem_status").fetchone()[0]
    wait_until(lambda: rig.db.conn.execute("SELECT checked_at FROM modem_status"
                                           ).fetchone()[0] > before + 3, 60, "more looks")
    assert len(rungs(rig)) == climbed
    results = check.run_checks(rig.db, rig.config, rig.db.conn.execute(
        "SELECT checked_at FROM modem_status").fetchone()[0])
    told = next(r for r in results if r.name == "recovery:modem0")
    assert told.status == check.CRITICAL and "差し直してください" in told.message
    assert modem_link.latest(rig.db.conn, "modem0")["rung"] == "gave_up"


@pytest.mark.slow
def test_while_a_send_waits_for_its_answer_staff_read_that_not_not_checked_recently(
        rig_factory):
    # The demo with `sim-ctl hang sms`: for two minutes the dashboard said the daemon had
    # not checked the modem recently, while its worker was waiting on AT+CMGS.
    import time

    from appliance import health
    rig = rig_factory(sections={"recovery": RECOVERY, "check": {"heartbeat_max_age": 3}},
                      daemon={"poll_interval": 1})
    rig.daemon.start()
    wait_until(lambda: modem_ready(rig), 30, "the modem ready")
    rig.sims[0].control().hang(kind="sms")      # the SMS side never answers; AT still does
    rig.broadcast(seed_patients(rig.db, 1))

    def reason() -> str | None:
        return health.read_health(rig.db, rig.config, time.time()).modems[0].reason
    wait_until(lambda: reason() == "awaiting_answer", 50, "the wait for the answer shown")
    line = next(r for r in check.run_checks(rig.db, rig.config, time.time())
                if r.name == "modem:modem0")
    assert "送信への応答を待っています" in line.message
    # Unplugged, the send's wait ends at once and the daemon stops without waiting it out.
    rig.sims[0].control().unplug()


@pytest.mark.slow
def test_a_modem_whose_sends_hang_is_reset_and_the_broadcast_finishes(rig_factory):
    # The SMS side hangs and AT still answers: a resync does not cure it, so the next two
    # unanswered sends climb to the reset, which does (the demo looped on resync instead).
    rig = rig_factory(sections={"recovery": RECOVERY},
                      daemon={"poll_interval": 1, "send_timeout": 2})
    rig.daemon.start()
    wait_until(lambda: modem_ready(rig), 30, "the modem ready")
    rig.sims[0].control().hang(kind="sms")
    bid = rig.broadcast(seed_patients(rig.db, 5), priority="emergency")
    rig.wait_final(bid, timeout=120)
    assert rungs(rig) == [("resync", "failed"), ("reset", "recovered")]
    states = recipient_states(rig.db)
    assert states["submitted"] + states["delivered"] == 5
    assert max(messages_per_number(rig.sims).values()) == 1
