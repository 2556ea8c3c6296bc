"""The daemon end to end: `tsunagu daemon` and `tsunagu sim` as subprocesses, broadcasts written
into the database as the web UI writes them, outcomes read from the simulators' network logs.

Every fault test ends with every recipient in a final state and no number given a message
twice: the two promises a clinic relies on.
"""
from __future__ import annotations

import random
import subprocess
from collections import Counter

import pytest

from appliance import broadcasts, config as config_mod
from appliance.db import connect, write
from tests.daemon_harness import (TEXT, DaemonProcess, Rig, Sim, all_final, messages,
                                  messages_per_number, recipient_states, seed_patients,
                                  tsunagu_command, wait_until, write_config, _now)

CHOICES = ["来院できる", "来院できない", "連絡がほしい"]


def assert_once_each(rig: Rig, expected_numbers: set[str]) -> None:
    per_number = messages_per_number(rig.sims)
    assert set(per_number) <= expected_numbers
    assert max(per_number.values(), default=0) <= 1, per_number.most_common(3)


# -- the happy path ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_200_recipient_two_part_broadcast_reaches_every_number_exactly_once(rig_factory,
                                                                             modem_model):
    rig = rig_factory(model=modem_model)
    group = seed_patients(rig.db, 200)
    bid = rig.broadcast(group, priority="emergency", choices=CHOICES)
    rig.daemon.start()
    rig.wait_delivered(200, timeout=120)
    numbers = {r["phone"]: r["text"] for r in broadcasts.recipients(rig.db.conn, bid)}
    received = messages(rig.sims)
    assert Counter(m["to"] for m in received) == Counter({n: 1 for n in numbers})
    assert all(m["parts"] == 2 and m["text"] == numbers[m["to"]] for m in received)
    assert broadcasts.summary(rig.db.conn, bid)["state"] == "done"

    control = rig.sims[0].control()
    control.inject_sms(sender="+819010000003", text="２")
    control.inject_sms(sender="+819010000007", text="１ 行けます")
    control.inject_sms(sender="+819099999999", text="どちらさまですか")
    wait_until(lambda: broadcasts.summary(rig.db.conn, bid)["acknowledged"] == 2, 20,
               "two acknowledgements")
    assert broadcasts.summary(rig.db.conn, bid)["tally"] == {"来院できる": 1, "来院できない": 1,
                                                            "連絡がほしい": 0}
    wait_until(lambda: rig.db.conn.execute("SELECT count(*) FROM inbound_messages WHERE "
                                           "recipient_id IS NULL").fetchone()[0] == 1, 20,
               "the unmatched message in the inbox")


# -- faults -------------------------------------------------------------------------------

def test_cms_errors_on_a_fifth_of_sends_are_retried_until_everyone_has_it(rig_factory):
    rig = rig_factory(daemon={"max_attempts": 12, "retry_backoff": 0.01})
    group = seed_patients(rig.db, 40)
    rig.sims[0].control().fail_sends(code=500, rate=0.2)
    bid = rig.broadcast(group)
    rig.daemon.start()
    states = rig.wait_final(bid)
    rig.wait_delivered(40)
    assert states["failed"] == 0 and states["uncertain"] == 0
    assert messages_per_number(rig.sims) == Counter({f"+81901{i:07d}": 1 for i in range(40)})
    attempts = rig.db.conn.execute("SELECT sum(attempts) FROM recipients").fetchone()[0]
    assert attempts > 40  # errors really happened and were retried


def test_a_permanent_error_fails_only_those_numbers_at_once(rig_factory):
    rig = rig_factory()
    group = seed_patients(rig.db, 20)
    control = rig.sims[0].control()
    refused = {f"+81901{i:07d}" for i in (2, 11, 17)}
    for number in refused:
        control.fail_sends(code=21, number=number)
    bid = rig.broadcast(group)
    rig.daemon.start()
    states = rig.wait_final(bid)
    rig.wait_delivered(17)
    assert states["failed"] == 3
    failed = {r["phone"]: r for r in broadcasts.recipients(rig.db.conn, bid)
              if r["state"] == "failed"}
    assert set(failed) == refused and all(r["attempts"] == 1 for r in failed.values())
    assert set(messages_per_number(rig.sims)) == {f"+81901{i:07d}" for i in range(20)} - refused


def test_a_database_error_during_the_bookkeeping_of_a_send_loses_no_answer(rig_factory):
    # The database refuses what the worker writes while the modem sends part 1 (part 2
    # marked ahead, with the answer to the message before): the send must still be
    # answered and recorded, and the work left undone done by the next commit.
    rig = rig_factory()
    group = seed_patients(rig.db, 10)
    rig.db.conn.execute(
        "CREATE TRIGGER refuse_marking_ahead BEFORE INSERT ON parts WHEN NEW.seq = 2 AND "
        "NEW.sending_at IS NULL BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
    bid = rig.broadcast(group, choices=CHOICES)  # two parts each
    rig.daemon.start()
    rig.wait_final(bid)
    rig.wait_delivered(10)
    assert recipient_states(rig.db)["delivered"] == 10
    assert messages_per_number(rig.sims) == Counter({f"+81901{i:07d}": 1 for i in range(10)})
    assert rig.db.conn.execute("SELECT count(*) FROM parts WHERE state != 'delivered' OR "
                               "mr IS NULL").fetchone()[0] == 0
    assert "bookkeeping during a send failed" in rig.daemon.stderr()


def test_commands_with_no_answer_leave_every_recipient_final_and_none_twice(rig_factory):
    rig = rig_factory()
    group = seed_patients(rig.db, 20)
    bid = rig.broadcast(group)
    rig.daemon.start()
    control = rig.sims[0].control()
    wait_until(lambda: rig.sims[0].events("submit"), 30, "the first send")
    control.drop_next_command()
    states = rig.wait_final(bid, timeout=120)
    assert states["queued"] == states["sending"] == 0
    assert_once_each(rig, {f"+81901{i:07d}" for i in range(20)})
    got = messages_per_number(rig.sims)
    for r in broadcasts.recipients(rig.db.conn, bid):
        if r["state"] in ("submitted", "delivered"):
            assert got[r["phone"]] == 1


def test_a_sim_removed_mid_broadcast_pauses_sending_until_it_is_back(rig_factory):
    rig = rig_factory(send_delay=0.02, daemon={"poll_interval": 0.5})
    group = seed_patients(rig.db, 30)
    bid = rig.broadcast(group)
    rig.daemon.start()
    control = rig.sims[0].control()
    wait_until(lambda: len(rig.sims[0].events("message")) >= 5, 30, "five sent")
    control.remove_sim()
    wait_until(lambda: rig.db.conn.execute("SELECT reason FROM modem_status").fetchone()
               and rig.db.conn.execute("SELECT reason FROM modem_status").fetchone()[0] == "no_sim",
               30, "the modem reported without SIM")
    control.insert_sim()
    rig.wait_final(bid)
    rig.wait_delivered(30)
    assert messages_per_number(rig.sims) == Counter({f"+81901{i:07d}": 1 for i in range(30)})


def test_the_port_vanishing_and_returning_loses_nobody(rig_factory, modem_model):
    rig = rig_factory(model=modem_model, send_delay=0.02, daemon={"resend_uncertain": "never"})
    group = seed_patients(rig.db, 30)
    bid = rig.broadcast(group)
    rig.daemon.start()
    control = rig.sims[0].control()
    wait_until(lambda: len(rig.sims[0].events("message")) >= 5, 30, "five sent")
    control.unplug()
    wait_until(lambda: (rig.db.conn.execute("SELECT reason FROM modem_status").fetchone()
                        or [None])[0] == "port_missing", 30, "the modem reported missing")
    control.replug()
    states = rig.wait_final(bid)
    assert states["queued"] == states["sending"] == 0 and states["failed"] == 0
    assert_once_each(rig, {f"+81901{i:07d}" for i in range(30)})
    assert states["delivered"] + states["submitted"] + states["uncertain"] == 30


def test_when_one_of_two_modems_dies_for_good_the_other_sends_the_rest(rig_factory):
    rig = rig_factory(sims=2, send_delay=0.02)
    group = seed_patients(rig.db, 40)
    bid = rig.broadcast(group)
    rig.daemon.start()
    wait_until(lambda: len(rig.sims[0].events("message")) >= 3, 30, "modem0 sending")
    rig.sims[0].control().unplug()
    states = rig.wait_final(bid)
    assert states["queued"] == states["sending"] == states["failed"] == 0
    assert_once_each(rig, {f"+81901{i:07d}" for i in range(40)})
    assert len(rig.sims[1].events("message")) >= 20


CLAIMED_AHEAD = ("SELECT count(*) FROM recipients AS r WHERE state = 'sending' AND NOT EXISTS "
                 "(SELECT 1 FROM parts WHERE recipient_id = r.id)")
# A part marked 'sending' ahead (no hand-over yet) while the part before it is on the air:
# what the worker's bookkeeping leaves when the part in flight is not a message's last.
NEXT_PART_PREPARED = (
    "SELECT count(*) FROM parts AS p JOIN parts AS before ON before.recipient_id = "
    "p.recipient_id AND before.seq = p.seq - 1 WHERE p.state = 'sending' AND p.sending_at "
    "IS NULL AND before.state = 'sending' AND before.sending_at IS NOT NULL")


def hold_a_last_part_on_the_air(rig: Rig):
    """Until the network holds the answer to a message's last part while the worker has
    claimed the next message ahead; returns the call that lets the network answer.

    Whatever a test does before releasing happens, for certain, before the worker looks at
    the claim again: no race with the modem's speed or the machine's load. If the held send
    is a message's first part instead, it is let go and the next one is tried."""
    control = rig.sims[0].control()

    def where() -> str | None:
        if rig.db.conn.execute(CLAIMED_AHEAD).fetchone()[0]:
            return "last part, next message claimed"
        if rig.db.conn.execute(NEXT_PART_PREPARED).fetchone()[0]:
            return "not a last part"
        return None  # the worker's bookkeeping for the held send is not committed yet

    for _ in range(20):
        control.hold_sends()
        wait_until(lambda: control.status()["held_sends"], 30, "a send held by the network")
        if wait_until(where, 30, "the bookkeeping of the send held") == \
                "last part, next message claimed":
            return control.release_sends
        control.release_sends()
    raise AssertionError("never held a last part with the next message claimed")


def test_after_a_cancel_no_message_is_begun_and_the_one_on_the_air_finishes(rig_factory):
    rig = rig_factory(send_delay=0.05)
    group = seed_patients(rig.db, 12)
    bid = rig.broadcast(group, choices=CHOICES)  # two parts each
    rig.daemon.start()
    wait_until(lambda: len(rig.sims[0].events("message")) >= 3, 30, "three sent")
    # Cancel while the modem sends a last part, when the worker has claimed the next
    # message ahead: that one must not be begun.
    release = hold_a_last_part_on_the_air(rig)
    with write(rig.db) as conn:
        broadcasts.cancel(conn, bid, actor="test", now=_now())
    cancelled_at = _now()  # committed: from here on the worker can see it
    release()
    wait_until(lambda: all_final(rig.db, bid), 30, "the message on the air finished")
    begun_after = rig.db.conn.execute(
        "SELECT count(*) FROM parts WHERE seq = 1 AND sending_at > ?", [cancelled_at]
    ).fetchone()[0]
    assert begun_after == 0
    states = recipient_states(rig.db)
    sent = states["submitted"] + states["delivered"]
    assert states["cancelled"] == 12 - sent and sent >= 3
    wait_until(lambda: len(rig.sims[0].events("message")) == sent, 30, "the last one whole")


def test_an_emergency_created_mid_broadcast_goes_before_the_next_routine_message(
        rig_factory):
    rig = rig_factory(send_delay=0.05)
    group = seed_patients(rig.db, 12)
    routine = rig.broadcast(group, choices=CHOICES)  # two parts each
    rig.daemon.start()
    wait_until(lambda: len(rig.sims[0].events("message")) >= 2, 30, "routine sending")
    # While a last part is on the air and the next routine message is claimed ahead.
    release = hold_a_last_part_on_the_air(rig)
    urgent = rig.broadcast(group, priority="emergency")
    created_at = _now()  # committed: from here on the worker can see it
    release()
    rig.wait_final(urgent)
    first_urgent = rig.db.conn.execute(
        "SELECT min(p.sending_at) FROM parts AS p JOIN recipients AS r ON r.id = p.recipient_id "
        "WHERE r.broadcast_id = ?", [urgent]).fetchone()[0]
    routine_begun_between = rig.db.conn.execute(
        "SELECT count(*) FROM parts AS p JOIN recipients AS r ON r.id = p.recipient_id "
        "WHERE r.broadcast_id = ? AND p.seq = 1 AND p.sending_at > ? AND p.sending_at < ?",
        [routine, created_at, first_urgent]).fetchone()[0]
    assert routine_begun_between == 0


# -- crash safety -------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_9_at_random_points_loses_nobody_and_sends_nobody_twice(rig_factory):
    rig = rig_factory(send_delay=0.03)
    group = seed_patients(rig.db, 60)
    bid = rig.broadcast(group)  # routine: an uncertain message is left for staff, not resent
    rng = random.Random(20261124)
    rig.daemon.start()
    for _ in range(3):
        target = len(rig.sims[0].events("submit")) + rng.randint(3, 12)
        wait_until(lambda: len(rig.sims[0].events("submit")) >= target or
                   all_final(rig.db, bid), 60, "progress before the kill")
        rig.daemon.kill()
        rig.daemon.start()
    states = rig.wait_final(bid, timeout=120)
    assert sum(states.values()) == 60 and states["queued"] == states["sending"] == 0
    got = messages_per_number(rig.sims)
    assert max(got.values()) == 1
    for r in broadcasts.recipients(rig.db.conn, bid):
        if r["state"] in ("submitted", "delivered"):
            assert got[r["phone"]] == 1, r
        else:
            assert r["state"] == "uncertain" and "may or may not" in r["last_error"]
    rig.daemon.stop()
    assert rig.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_kill_while_waiting_for_the_pace_between_parts_resends_visibly_not_uncertain(
        rig_factory):
    # pace 30/min: two seconds between parts, and the daemon is killed inside them.
    rig = rig_factory(pace=30)
    group = seed_patients(rig.db, 1)
    # Routine, so an uncertain message would not be resent; the choices make two parts.
    bid = rig.broadcast(group, choices=CHOICES)

    def part_states():
        return [r[0] for r in rig.db.conn.execute(
            "SELECT state FROM parts ORDER BY seq").fetchall()]
    rig.daemon.start()
    wait_until(lambda: part_states()[:1] == ["submitted"], 30, "part 1 submitted")
    assert "sending" not in part_states()  # part 2 waits unmarked: nothing is in flight
    rig.daemon.kill()
    rig.daemon.start()
    states = rig.wait_final(bid)
    assert states["submitted"] + states["delivered"] == 1 and states["uncertain"] == 0
    row = broadcasts.recipients(rig.db.conn, bid)[0]
    assert "after part 1/2" in row["last_error"] and row["reason"] == "resumed"
    # The network's log: part 2 went after the restart with part 1's reference, so the
    # phone joined them — one message, no fragment and no second copy.
    submits = rig.sims[0].events("submit")
    assert [(s["part"], s["ref"]) for s in submits] == [(1, submits[0]["ref"]),
                                                        (2, submits[0]["ref"])]
    assert len(rig.sims[0].events("message")) == 1


def test_sigterm_finishes_the_message_in_flight_and_exits_0(rig_factory):
    rig = rig_factory(send_delay=0.3)
    group = seed_patients(rig.db, 10)
    bid = rig.broadcast(group)
    rig.daemon.start()
    wait_until(lambda: rig.sims[0].events("submit"), 30, "the first send")
    assert rig.daemon.stop() == 0
    states = recipient_states(rig.db)
    assert states["sending"] == 0 and states["uncertain"] == 0
    assert broadcasts.summary(rig.db.conn, bid)["counts"]["queued"] > 0


def test_a_second_daemon_on_the_same_database_refuses_to_start(rig_factory):
    rig = rig_factory()
    rig.daemon.start()
    wait_until(lambda: rig.db.conn.execute("SELECT count(*) FROM heartbeat").fetchone()[0],
               30, "the first daemon's heartbeat")
    second = subprocess.run([*tsunagu_command(), "daemon", "--config", str(rig.config_path)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "another tsunagu daemon" in second.stderr
    assert rig.daemon.alive()


def test_the_daemon_unlocks_a_sim_with_the_pin_from_the_configuration(tmp_path):
    sim = Sim(tmp_path, "modem0", pin="4321").start()
    try:
        config = config_mod.load(write_config(tmp_path, [sim]))
        db = connect(config.database)
        group = seed_patients(db, 3)
        daemon = DaemonProcess(config.path, tmp_path).start()
        try:
            p = broadcasts.plan(db.conn, config, text=TEXT, group_ids=[group], now=_now())
            with write(db) as conn:
                broadcasts.create(conn, p, title="t", actor="test", now=_now())
            wait_until(lambda: recipient_states(db)["delivered"] == 3, 60, "three delivered")
            assert db.conn.execute("SELECT sim_state FROM modem_status").fetchone()[0] == "READY"
        finally:
            daemon.stop()
            db.conn.close()
    finally:
        sim.stop()


def test_a_wrong_pin_is_tried_once_never_again_so_the_sim_does_not_lock(tmp_path):
    sim = Sim(tmp_path, "modem0", pin="4321").start()
    path = write_config(tmp_path, [sim], daemon={"poll_interval": 0.5})
    path.write_text(path.read_text(encoding="utf-8").replace('pin = "4321"', 'pin = "0000"'),
                    encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    daemon = DaemonProcess(path, tmp_path).start()
    control = sim.control()
    try:
        wait_until(lambda: (db.conn.execute("SELECT reason FROM modem_status").fetchone()
                            or [None])[0] == "sim_pin", 30, "the modem reported as needing its PIN")
        control.unplug()    # a replug powers the SIM up again: it asks for the PIN again
        control.replug()
        wait_until(lambda: daemon.stderr().count("modem0: open") >= 2, 30,
                   "the daemon to reopen the replugged modem")
        assert control.status()["pin_attempts_left"] == 2
        assert "refused the PIN" in daemon.stderr()
    finally:
        daemon.stop()
        db.conn.close()
        sim.stop()


@pytest.mark.parametrize("notices, noticed", [
    (True, "the modem says RDY"),         # it says it restarted: set up again at once
    (False, "lost its settings"),         # its notices were missed: the poll finds out
], ids=["announced", "silent"])
def test_a_modem_that_reboots_by_itself_is_set_up_again_and_replies_still_arrive(
        rig_factory, modem_model, notices, noticed):
    rig = rig_factory(model=modem_model, daemon={"poll_interval": 0.3})
    group = seed_patients(rig.db, 3)
    bid = rig.broadcast(group, choices=CHOICES)
    rig.daemon.start()
    rig.wait_delivered(3)
    control = rig.sims[0].control()
    control.reboot(notices=notices)  # same port; CNMI and the rest are forgotten
    wait_until(lambda: noticed in rig.daemon.stderr(), 30, "the daemon to notice the reboot")
    control.inject_sms(sender="+819010000001", text="1")
    wait_until(lambda: broadcasts.summary(rig.db.conn, bid)["acknowledged"] == 1, 30,
               "the reply after the reboot")


@pytest.mark.slow
def test_delivery_reports_survive_five_sigterms_and_five_kill_9s(rig_factory, modem_model):
    # Reports fall due 0.3 s after each send, so some always fall due while the daemon is
    # stopping, dead or starting: a real modem keeps them only if they were routed to its
    # storage (+CDSI); a +CDS written to a port nobody reads is gone.
    rig = rig_factory(model=modem_model, send_delay=0.05, report_delay=0.3)
    group = seed_patients(rig.db, 40)
    # Emergency: a message left uncertain by a kill is resent (visibly), so it too can end
    # delivered.
    bid = rig.broadcast(group, priority="emergency")
    rng = random.Random(20261202)
    rig.daemon.start()
    for round_ in range(10):
        target = len(rig.sims[0].events("submit")) + rng.randint(2, 4)
        wait_until(lambda: len(rig.sims[0].events("submit")) >= target or
                   all_final(rig.db, bid), 60, "progress before the stop")
        if round_ % 2:
            rig.daemon.kill()
        else:
            assert rig.daemon.stop() == 0
        rig.daemon.start()
    rig.wait_final(bid, timeout=120)
    wait_until(lambda: recipient_states(rig.db)["delivered"] == 40 or not rig.daemon.alive(),
               30, "every patient 配達済み")
    got = messages_per_number(rig.sims)
    assert len(got) == 40
    for r in broadcasts.recipients(rig.db.conn, bid):
        # Nobody twice without it being said: a second copy is recorded as a resend.
        assert got[r["phone"]] == 1 or "resent" in (r["last_error"] or ""), r


# -- resuming when the modem says it is back ---------------------------------------------------

def _polls_seen(rig: Rig, count: int) -> None:
    """Wait until the daemon has looked at the modem *count* times (each look writes the
    modem's status row): its back-off has then grown past 2 s (0.5, 1, 2, 4…)."""
    seen: set[float] = set()

    def looked() -> bool:
        row = rig.db.conn.execute("SELECT checked_at, reason FROM modem_status").fetchone()
        if row is not None and row[1] is not None:
            seen.add(row[0])
        return len(seen) >= count
    wait_until(looked, 30, f"{count} looks at the modem while it is away")


@pytest.mark.parametrize("away, back", [
    (lambda c: c.set_registration(state="searching"), lambda c: c.set_registration(state="home")),
    (lambda c: c.remove_sim(), lambda c: c.insert_sim()),
    (lambda c: c.unplug(), lambda c: c.replug()),
], ids=["registration", "sim", "usb"])
def test_the_next_part_is_on_the_air_within_2_s_of_the_modem_saying_it_is_back(
        rig_factory, modem_model, away, back):
    # poll_interval 30: the polling backstop alone would take far longer than 2 s.
    rig = rig_factory(model=modem_model, daemon={"poll_interval": 30})
    control = rig.sims[0].control()
    away(control)
    bid = rig.broadcast(seed_patients(rig.db, 3))
    rig.daemon.start()
    _polls_seen(rig, 4)
    assert not rig.sims[0].events("submit")
    back_at = _now()
    back(control)
    first = wait_until(lambda: rig.sims[0].events("submit"), 30, "the first send")[0]
    assert first["t"] - back_at <= 2.0, first["t"] - back_at
    rig.wait_final(bid)
