"""The worker reads the delivery reports its modem stored (+CDSI) a batch at a time while it
sends — each read takes commands between two sends — against a simulated modem on a real
pty, with an injected clock."""
from __future__ import annotations

import json

from appliance.dispatcher import STORED_BATCH, STORED_WAIT
from tests.daemon_harness import wait_until, worker_with_a_broadcast
from tests.helpers import SteppedClock

SECONDS_PER_SMS = 0.5   # the injected clock's time per send


def _reports_routed(log_path) -> int:
    if not log_path.exists():
        return 0
    return sum(1 for line in log_path.read_text().splitlines()
               if json.loads(line)["event"] == "report")


def test_stored_reports_are_read_a_batch_at_a_time_while_there_is_work(tmp_path, sim_modem):
    clock = SteppedClock()
    people = 16
    # No health poll during the test: a poll reads what is stored too, and would hide when
    # the reports alone are read.
    worker, db = worker_with_a_broadcast(tmp_path, sim_modem, people, clock,
                                         daemon={"poll_interval": 3600})
    saved = lambda: db.conn.execute("SELECT count(*) FROM delivery_reports").fetchone()[0]  # noqa: E731
    reads = []   # (clock, reports saved by then) whenever a step saved reports
    try:
        for sent in range(1, people):   # the last message would leave the worker idle
            clock.t += SECONDS_PER_SMS
            before = saved()
            worker.step()
            assert len(sim_modem.network.messages()) == sent
            if saved() > before:
                reads.append((clock.t, saved()))
            # The modem reports each message at once: wait for it, so that the next send
            # finds it announced, as a real send of half a second would.
            wait_until(lambda: _reports_routed(tmp_path / "net.jsonl") >= sent, 10,
                       "the delivery report")
    finally:
        worker._close()
        worker.events.close()
    assert reads, "no report was read while sending"
    for (t1, n1), (t2, n2) in zip(reads, reads[1:]):
        # After a read, the next report waits its own STORED_WAIT (or for a full batch)
        # — not the time the first report of the read before waited.
        assert t2 - t1 >= STORED_WAIT or n2 - n1 >= STORED_BATCH, reads
