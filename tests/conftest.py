"""Fixtures shared by the modem tests."""
from __future__ import annotations

import pytest

from modem.sim import SimulatedModem


@pytest.fixture
def sim_modem(tmp_path):
    """A simulated modem on a real pty at tmp_path/modem0, with a network log."""
    modem = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl").start()
    try:
        yield modem
    finally:
        modem.stop()
