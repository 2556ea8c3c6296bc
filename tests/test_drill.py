"""A small, fast disaster drill (issue 16): the bench's drill at a test's scale — 2 modems,
congestion (+CMS ERROR 42) on a fifth of the sends, one modem unplugged mid-way. Everyone
is reached once: nobody lost, nobody twice, nobody failed. (Its time is the bench's to
measure, bench/disaster_drill.py; a test only proves the outcome.)"""
from __future__ import annotations

import pytest

from bench import disaster_drill

pytestmark = pytest.mark.slow


def test_the_drill_reaches_every_patient_once_through_congestion_and_an_unplugged_modem():
    result = disaster_drill.run(
        patients=30, delay=(0.02, 0.06), refusal_rate=0.2, unplug_seconds=0.5, seed=3,
        # The production back-off scaled to the test's 0.04 s per SMS (a real one's ~2 s).
        daemon_settings={"retry_backoff": 0.1, "retry_backoff_max": 2.4,
                         "heartbeat_interval": 0.5, "poll_interval": 2},
        timeout=120)
    assert result["daemon_alive"], result.get("daemon_stderr")
    assert result["unplugged_after_s"] is not None          # the fault happened mid-way
    assert result["refused_or_lost_sends"] > 0               # and congestion did too
    assert (result["reached"], result["lost"], result["duplicates"]) == (30, 0, 0), result
    assert result["failed"] == result["uncertain"] == 0, result
