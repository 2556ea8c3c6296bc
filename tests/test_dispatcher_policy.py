"""The worker's error policy against a simulated modem on a real pty, with an injected clock:
the back-off is the network's when the network refuses everything, and nobody's when it
refuses one send in five."""
from __future__ import annotations

from appliance.dispatcher import FAILURES_BEFORE_BACKOFF
from tests.daemon_harness import worker_with_a_broadcast
from tests.helpers import SteppedClock


def _worker(tmp_path, sim_modem, people: int):
    clock = SteppedClock()
    worker, db = worker_with_a_broadcast(tmp_path, sim_modem, people, clock, daemon={
        "retry_backoff": 5, "retry_backoff_max": 120})
    return worker, db, clock


def _waits(db, clock) -> list[float]:
    """How long each recipient waiting to be retried waits from its failed attempt."""
    return sorted(round(r[0] - r[1], 1) for r in db.conn.execute(
        "SELECT r.next_attempt_at, max(p.sending_at) FROM recipients r JOIN parts p ON "
        "p.recipient_id = r.id WHERE r.state = 'queued' AND r.attempts > 0 GROUP BY r.id"))


def _send_one(worker, clock) -> bool:
    clock.t += 1.0   # a real modem's second per SMS (and the SIM's pace allows the next)
    return worker.process_one()


def test_a_network_that_refuses_everything_is_given_room_doubling(tmp_path, sim_modem):
    worker, db, clock = _worker(tmp_path, sim_modem, 6)
    sim_modem.fail_sends(42)   # congestion on every send
    try:
        for _ in range(7):
            assert _send_one(worker, clock)
        # Failures 1-3 in a row go again at once (one send in five failing does that by
        # chance), then 5, 10, 20, 40 s. The 7th attempt was the first recipient again
        # (it failed first, and waited for nobody); the second is claimed ahead.
        assert FAILURES_BEFORE_BACKOFF == 3
        assert _waits(db, clock) == [0.0, 5.0, 10.0, 20.0, 40.0]
    finally:
        worker._close()
        worker.events.close()


def test_one_refused_send_among_good_ones_waits_for_nobody(tmp_path, sim_modem):
    worker, db, clock = _worker(tmp_path, sim_modem, 4)
    sim_modem.fail_sends(42, count=1)
    try:
        assert _send_one(worker, clock)
        assert _waits(db, clock) == [0.0]   # no time of its own…
        while _send_one(worker, clock):
            pass  # until the queue is empty
        order = [m["to"][-1] for m in sim_modem.network.messages()]
        assert order == ["1", "2", "3", "0"]   # …behind those already waiting
    finally:
        worker._close()
        worker.events.close()


def test_a_phone_out_of_service_backs_off_on_its_own(tmp_path, sim_modem):
    worker, db, clock = _worker(tmp_path, sim_modem, 2)
    number = db.conn.execute("SELECT phone FROM recipients ORDER BY id").fetchone()[0]
    sim_modem.fail_sends(27, number=number)   # destination out of service
    waits = {}
    try:
        while len(waits) < 4:
            if not _send_one(worker, clock):
                clock.t = db.conn.execute("SELECT min(next_attempt_at) FROM recipients "
                                          "WHERE state = 'queued'").fetchone()[0] - 1.0
            row = db.conn.execute("SELECT attempts, state FROM recipients WHERE phone = ?",
                                  [number]).fetchone()
            if row["state"] == "queued" and row["attempts"]:
                waits[row["attempts"]] = _waits(db, clock)[0]
        assert waits == {1: 0.0, 2: 5.0, 3: 10.0, 4: 20.0}
        assert len(sim_modem.network.messages()) == 1   # the other patient was not held up
    finally:
        worker._close()
        worker.events.close()
