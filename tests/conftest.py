"""Fixtures shared by the tests: a simulated modem, an empty migrated database."""
from __future__ import annotations

import pytest

from appliance.db import connect
from modem.sim import SimulatedModem


@pytest.fixture(autouse=True)
def synchronised_clock(monkeypatch):
    """The readiness check asks whether the system clock is synchronised; a test machine's
    answer varies, so every test (and the processes it starts) is told "yes" unless it says
    otherwise (appliance.clock.SYNC_ENV)."""
    monkeypatch.setenv("TSUNAGU_CLOCK_SYNC", "yes")


@pytest.fixture
def sim_modem(tmp_path):
    """A simulated modem on a real pty at tmp_path/modem0, with a network log."""
    modem = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl").start()
    try:
        yield modem
    finally:
        modem.stop()


@pytest.fixture
def db(tmp_path):
    """A fresh database with every migration applied (modules may define their own)."""
    database = connect(tmp_path / "t.db")
    yield database
    database.conn.close()
