"""The system clock kept right from the network's time when NTP is not synchronised (a Pi has
no battery clock; after a power cut with the internet down it may be hours off)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from appliance import audit, check, config as config_mod, timekeeping
from appliance.config import TimeConfig
from appliance.db import connect
from appliance.dispatcher import Worker
from tests.daemon_harness import write_config


class ShiftedClock:
    """The system clock, *offset* seconds off; setting it is what the setter does."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # ok-sleep: the Clock protocol asks for it; ClockKeeper never waits

    def set_to(self, epoch: float) -> None:
        self.offset = epoch - time.time()


def network(offset: float = 0.0) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=offset)


def keeper(clock, ntp, *, setter=None, **time_config) -> timekeeping.ClockKeeper:
    return timekeeping.ClockKeeper(TimeConfig(**time_config), clock, ntp_state=lambda: ntp,
                                   set_clock=setter)


def test_ntp_synchronised_leaves_the_clock_alone_and_says_ntp(db):
    clock, set_to = ShiftedClock(0), []
    status = keeper(clock, True, setter=set_to.append).observe(db, "modem0", network(500))
    assert status.source == "ntp" and set_to == []
    assert timekeeping.read_status(db.conn)["source"] == "ntp"


def test_three_hours_off_without_ntp_is_set_from_the_network_and_audited(db):
    clock = ShiftedClock(-3 * 3600)
    status = keeper(clock, False, setter=clock.set_to).observe(db, "modem0", network())
    assert status.source == "network" and status.corrected
    assert abs(clock.now() - time.time()) < 5
    [entry] = audit.entries(db, action="clock_set")
    assert entry.actor == "daemon" and round(entry.detail["offset_seconds"] / 3600) == 3


def test_a_small_difference_is_left_alone_and_unknown_ntp_is_never_overruled(db):
    clock, set_to = ShiftedClock(-60), []
    assert keeper(clock, False, setter=set_to.append).observe(
        db, "modem0", network()).source == "network"
    status = keeper(ShiftedClock(-3 * 3600), None, setter=set_to.append).observe(
        db, "modem0", network())
    assert status.source == "unsynchronised" and "NTP state unknown" in status.detail
    assert set_to == []


def test_no_network_time_and_no_ntp_is_unsynchronised_and_check_warns(db, tmp_path):
    keeper(ShiftedClock(0), False).observe(db, "modem0", None)
    result = check.check_clock(time.time(), "ja", conn=db.conn)
    assert result.status == check.WARNING and "同期されていません" in result.message


def test_a_failing_setter_is_reported_not_raised(db):
    def refuse(epoch):
        raise OSError("systemctl exited 1: Access denied")
    status = keeper(ShiftedClock(-3 * 3600), False, setter=refuse).observe(
        db, "modem0", network())
    assert status.source == "unsynchronised" and "Access denied" in status.detail


def test_it_looks_once_per_check_interval_however_many_workers_offer(db):
    k = keeper(ShiftedClock(0), False, check_interval=600)
    assert k.observe(db, "modem0", network()) is not None
    assert not k.due() and k.observe(db, "modem1", network()) is None


def test_the_command_setter_runs_the_configured_command_with_the_epoch(tmp_path):
    out = tmp_path / "set"
    setter = timekeeping.command_setter(f"sh -c 'echo $0 > {out}' {{epoch}}")
    setter(1796179275.7)
    assert out.read_text().strip() == "1796179275"
    with pytest.raises(OSError, match="exited 3"):
        timekeeping.command_setter("sh -c 'exit 3'")(1)


def test_a_setter_without_epoch_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('database = "t.db"\n[time]\nsetter = "date -s now"\n'
                    '[[modem]]\nname = "m"\nport = "/dev/null"\n', encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match=r"time\.setter.*\{epoch\}"):
        config_mod.load(path)


def test_the_worker_corrects_a_clock_three_hours_off_from_the_modems_network_time(
        tmp_path, sim_modem):
    # Both injected: the system clock three hours slow, NTP not synchronised.
    class Modem0:
        name, link, pin = "modem0", sim_modem.link, None
    config = config_mod.load(write_config(tmp_path, [Modem0()]))
    connect(config.database).conn.close()  # migrated, as the daemon does at start
    clock = ShiftedClock(-3 * 3600)
    k = timekeeping.ClockKeeper(config.time, clock, ntp_state=lambda: False,
                                set_clock=clock.set_to)
    worker = Worker(config, config.modems[0], clock=clock, clock_keeper=k)
    try:
        assert worker.connect()
    finally:
        worker._close()
        worker.events.close()
    assert abs(clock.now() - time.time()) < 5
    worker_db = worker.db
    result = check.check_clock(clock.now(), "en", conn=worker_db.conn)
    assert result.status == check.OK and "cellular network" in result.message
