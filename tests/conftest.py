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


MODELS = ("ec25", "sim7600")


@pytest.fixture(params=MODELS)
def modem_model(request) -> str:
    """Each simulated model in turn: a test that takes it runs against both."""
    return request.param


@pytest.fixture
def sim_modem(tmp_path, modem_model):
    """A simulated modem (each model in turn) on a real pty at tmp_path/modem0, with a
    network log."""
    modem = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl",
                           model=modem_model).start()
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


@pytest.fixture
def rig_factory(tmp_path):
    """Make a tests.daemon_harness.Rig (simulated modems, config, database, daemon);
    everything it started is stopped at the end of the test."""
    from tests.daemon_harness import Rig
    rigs = []

    def make(*args, **kw) -> Rig:
        rigs.append(Rig(tmp_path, *args, **kw))
        return rigs[-1]
    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()
