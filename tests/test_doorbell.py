"""The daemon's doorbell: a ring after queued work wakes the idle workers, and ringing a
daemon that is not running is harmless."""
from __future__ import annotations

import os
import select
import threading

from appliance import config as config_mod, doorbell
from appliance.daemon import Daemon
from appliance.dispatcher import Worker
from modem.device import Modem
from tests.daemon_harness import write_config
from tests.helpers import wait_for


def test_ringing_a_daemon_that_is_not_running_says_so_and_raises_nothing(tmp_path):
    assert doorbell.ring(tmp_path / "tsunagu.db") is False
    assert doorbell.ring(":memory:") is False


def test_a_ring_reaches_the_doorbell_and_a_stale_socket_is_replaced(tmp_path):
    database = tmp_path / "tsunagu.db"
    first = doorbell.Doorbell(database)
    first._sock.close()  # a daemon that died: its socket file stays behind
    bell = doorbell.Doorbell(database)
    try:
        assert doorbell.ring(database) and doorbell.ring(database)
        assert bell.clear() == 2 and bell.clear() == 0
    finally:
        bell.close()
    assert not doorbell.socket_path(database).exists()
    assert doorbell.ring(database) is False


def test_a_database_path_too_long_for_a_socket_gets_no_doorbell(tmp_path):
    deep = tmp_path / ("x" * 120) / "tsunagu.db"
    assert doorbell.socket_path(deep) is None and doorbell.ring(deep) is False


def test_a_ring_wakes_the_daemons_idle_workers(tmp_path, sim_modem):
    class Modem0:
        name, link, pin = "modem0", sim_modem.link, None
    config = config_mod.load(write_config(tmp_path, [Modem0()]))
    daemon = Daemon(config)
    daemon.doorbell = doorbell.Doorbell(config.database)
    worker = Worker(config, config.modems[0])
    daemon.workers = [worker]
    try:
        doorbell.ring(config.database)
        daemon.wait(30)  # returns at the ring, not after 30 s
        assert select.select([worker._wake_r], [], [], 0)[0], "the worker was woken"
    finally:
        daemon.doorbell.close()
        worker.events.close()


def test_a_wake_ends_the_wait_for_the_modem_at_once(sim_modem):
    device = Modem.open(str(sim_modem.link))
    device.initialise()
    read_end, write_end = os.pipe()
    got = []
    waiting = threading.Thread(target=lambda: got.append(device.next_event(60, wake=read_end)),
                               daemon=True)
    try:
        waiting.start()
        os.write(write_end, b"!")
        wait_for(lambda: not waiting.is_alive(), 10, message="the wait ended by the wake")
        assert got == [None]
    finally:
        device.close()
