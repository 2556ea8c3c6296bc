"""The daemon on the worst day (issue 10): a failing part never stops the sending.

Each test runs `tsunagu daemon` and `tsunagu sim` as real processes, writes work into the
database as the web UI does, and reads what reached the phones from the simulator's log.
"""
from __future__ import annotations

import json
import time

import pytest

from appliance import check as check_mod
from appliance.db import write
from tests.daemon_harness import Rig, seed_patients, wait_until

pytestmark = pytest.mark.slow


def _bad_schedule(rig: Rig, text: str, group: str = "月水金 午前") -> int:
    """A schedule due every minute, written as an older version (or a hand edit) could have
    saved it: today's schedules.add() refuses such a text at the door."""
    with write(rig.db) as conn:
        return conn.execute(
            "INSERT INTO schedules (name, cron, text, groups, priority, created_by, created_at) "
            "VALUES ('会計のお知らせ', '* * * * *', ?, ?, 'routine', 'test', ?)",
            [text, json.dumps([group], ensure_ascii=False), time.time() - 120]).lastrowid


@pytest.mark.parametrize("text", ["本日の会計は { 窓口 } で", "{name}様 {date}は採血日です"])
def test_a_schedule_that_cannot_run_never_stops_the_daemon_and_is_shown_failed(rig_factory, text):
    rig = rig_factory()
    group = seed_patients(rig.db, 3)
    schedule_id = _bad_schedule(rig, text)
    rig.daemon.start()
    wait_until(lambda: rig.db.conn.execute("SELECT last_error FROM schedules WHERE id = ?",
                                           [schedule_id]).fetchone()[0] or not rig.daemon.alive(),
               30, "the schedule's failure recorded")
    assert rig.daemon.alive(), rig.daemon.stderr()[-3000:]
    # Sending goes on: an emergency broadcast queued now reaches everyone.
    bid = rig.broadcast(group, priority="emergency")
    states = rig.wait_final(bid)
    assert states["delivered"] + states["submitted"] == 3
    # Staff see it: the readiness check warns and names the schedule.
    results = check_mod.run_checks(rig.db, rig.config, time.time())
    [line] = [r for r in results if r.name == f"schedule:{schedule_id}"]
    assert line.status == check_mod.WARNING and "会計のお知らせ" in line.message
    # The failed run is not retried in a tight loop: one failure per due run.
    failures = rig.db.conn.execute("SELECT failures FROM schedules WHERE id = ?",
                                   [schedule_id]).fetchone()[0]
    assert failures == 1
