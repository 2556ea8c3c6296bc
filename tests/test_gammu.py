"""The realism bar: Debian's gammu, a third-party AT client, works against the simulated modem."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from modem.sim import SimulatedModem
from tests.helpers import network_log

pytestmark = pytest.mark.skipif(shutil.which("gammu") is None,
                                reason="gammu not installed (./scripts/test installs it)")

TEXT = ("停電のため本日の透析は中止です。自宅で待機してください。𠮷田さんへ" * 5)[:150]


@pytest.fixture
def gammurc(tmp_path, modem_model):
    modem = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl",
                           model=modem_model).start()
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {modem.link}\nconnection = at115200\n", encoding="utf-8")
    try:
        yield rc, modem
    finally:
        modem.stop()


def gammu(rc, *args):
    return subprocess.run(["gammu", "-c", str(rc), *args], capture_output=True, text=True,
                          timeout=60)


def test_gammu_identify_reads_each_simulated_model(gammurc):
    rc, modem = gammurc
    result = gammu(rc, "identify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert modem.model.manufacturer.split()[0].lower() in result.stdout.lower()
    assert modem.card.identity.imei in result.stdout


def test_gammu_sendsms_of_150_japanese_characters_arrives_as_exactly_that_text(gammurc):
    rc, modem = gammurc
    assert len(TEXT) == 150
    result = gammu(rc, "sendsms", "TEXT", "+819012345678", "-unicode", "-len", "400", "-text", TEXT)
    assert result.returncode == 0, result.stdout + result.stderr
    events = network_log(modem.log_path, until=lambda events: any(
        e["event"] == "message" for e in events))
    messages = [e for e in events if e["event"] == "message"]
    assert len(messages) == 1
    assert messages[0]["text"] == TEXT and messages[0]["to"] == "+819012345678"
