"""The recovery ladder of a modem that stops answering: resync, reset, power cycle, then staff
are told — each rung given time to work, resets and power cycles rate-limited so that a
modem that hangs again and again (or a daemon restarted again and again) is never reset in
a loop."""
from __future__ import annotations

from appliance.config import ModemConfig, RecoveryConfig
from appliance.modem_link import Ladder, latest


def ladder(db, *, power: bool = True, **recovery) -> Ladder:
    recovery.setdefault("rung_wait", 10)
    modem = ModemConfig(name="modem0", port="/dev/null",
                        power_cycle_command="true" if power else "")
    return Ladder(RecoveryConfig(**recovery), modem, db)


def test_each_rung_in_turn_each_given_its_time_then_staff_are_told(db):
    lad = ladder(db)
    assert lad.fault(0) == "resync"
    assert lad.fault(5) is None              # the resync still has time to work
    assert lad.fault(10) == "reset"
    assert lad.fault(20) == "power_cycle"
    assert lad.fault(30) == "gave_up"
    assert lad.fault(40) is None and lad.fault(4000) is None  # told; nothing more on its own
    assert latest(db.conn, "modem0")["rung"] == "gave_up"


def test_a_rung_that_helps_ends_the_ladder_and_says_so(db):
    lad = ladder(db)
    lad.fault(0), lad.fault(10)
    assert lad.recovered(12)
    assert latest(db.conn, "modem0") | {"started_at": None} == {
        "rung": "reset", "started_at": None, "outcome": "recovered", "detail": None}
    assert lad.fault(100) == "resync"        # a new hang begins at the bottom again


def test_without_a_power_cycle_command_or_resets_those_rungs_are_skipped(db):
    lad = ladder(db, power=False, reset=False)
    assert lad.fault(0) == "resync" and lad.fault(10) == "gave_up"


def test_a_modem_that_hangs_again_after_every_reset_is_never_reset_in_a_loop(db):
    lad, resets, now = ladder(db, max_resets_per_hour=3), [], 0.0
    for _ in range(200):                     # a fault every 10 s for over five hours
        rung = lad.fault(now)
        if rung in ("reset", "power_cycle"):
            resets.append(now)
            lad.recovered(now + 5)           # it helps for a moment, then hangs again
        now += 10
    assert resets, "the ladder was climbed"
    for t in resets:                         # never more than the limit in any hour
        assert sum(1 for u in resets if t <= u < t + 3600) <= 3


def test_a_restarted_daemon_counts_the_resets_its_previous_run_made(db):
    first = ladder(db, max_resets_per_hour=2)
    first.fault(0), first.fault(10), first.fault(20)   # resync, reset, power cycle
    again = ladder(db, max_resets_per_hour=2)          # a new run of the daemon
    assert again.fault(30) == "resync"
    assert again.fault(40) == "gave_up"                # the hour's two are used up
    assert again.fault(4000) == "resync"               # and allowed again an hour later


def test_a_ladder_climbed_for_unanswered_sends_is_left_only_by_an_answered_send(db):
    # Found in the demo with `sim-ctl hang sms`: AT still answered, so each resync's first
    # poll counted as recovery, the ladder began again at resync every four minutes for ever,
    # and each round made two more patients' messages uncertain. A reset would have cured it.
    lad = ladder(db)
    assert lad.fault(0, sends=True) == "resync"
    assert not lad.recovered(1)              # the modem answers AT: that proves nothing
    assert lad.fault(5, sends=True) == "reset"   # sends failed after it: no time to wait
    assert not lad.recovered(6)
    assert lad.recovered(10, by_send=True)   # a send answered: the reset helped
    assert latest(db.conn, "modem0")["rung"] == "reset"
    assert latest(db.conn, "modem0")["outcome"] == "recovered"
    assert lad.fault(9000) == "resync"       # a new hang begins at the bottom again
    assert lad.recovered(9001)               # of commands: an answered poll is enough
