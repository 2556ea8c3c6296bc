"""Other AT clients accept the simulated modem in both models: python-gsmmodem (a dependency
already, for its PDU codec) connects, identifies and sends; smstools' smsd sends a spooled
message. Debian's gammu: tests/test_gammu.py."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess

import pytest

from modem.sim import SimulatedModem
from tests.helpers import network_log, wait_for


def test_python_gsmmodem_connects_identifies_and_sends_on_each_model(tmp_path, modem_model):
    from gsmmodem.modem import GsmModem
    # A report due later than the test: python-gsmmodem reads it in a thread of its own,
    # which would outlive the closed port.
    sim = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl", model=modem_model,
                         report_delay=600).start()
    client = GsmModem(str(sim.link), 115200)
    client.smsTextMode = False  # the simulated modem speaks PDU mode, as Tsunagu does
    try:
        client.connect()
        assert (client.manufacturer, client.model) == (sim.model.manufacturer, sim.model.model)
        assert client.imei == sim.card.identity.imei
        assert client.networkName == "NTT DOCOMO"
        client.sendSms("+819012345678", "本日の透析は中止です", waitForDeliveryReport=False)
        events = network_log(sim.log_path, until=lambda events: any(
            e["event"] == "message" for e in events))
        assert [e["text"] for e in events if e["event"] == "message"] == ["本日の透析は中止です"]
    finally:
        client.close()
        sim.stop()


@pytest.mark.skipif(shutil.which("smsd") is None,
                    reason="smstools not installed (./scripts/test installs it)")
def test_smstools_sends_a_spooled_message_on_each_model(tmp_path, modem_model):
    sim = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl", model=modem_model,
                         report_delay=600).start()
    spool = {name: tmp_path / name
             for name in ("outgoing", "checked", "failed", "incoming", "sent")}
    for path in spool.values():
        path.mkdir()
    conf = tmp_path / "smsd.conf"
    conf.write_text("devices = GSM1\n" + "".join(f"{k} = {v}\n" for k, v in spool.items())
                    + f"logfile = {tmp_path}/smsd.log\nloglevel = 7\n"
                    f"infofile = {tmp_path}/smsd.working\npidfile = {tmp_path}/smsd.pid\n\n"
                    f"[GSM1]\ndevice = {sim.link}\nincoming = no\nbaudrate = 115200\n",
                    encoding="utf-8")
    user = pwd.getpwuid(os.getuid()).pw_name
    smsd = subprocess.Popen(["smsd", "-t", f"-c{conf}", f"-u{user}",
                             f"-g{grp.getgrgid(os.getgid()).gr_name}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (spool["checked"] / "message").write_text(
            "To: 819012345678\nAlphabet: UTF-8\n\n本日の透析は中止です\n", encoding="utf-8")
        events = network_log(sim.log_path, timeout=60, until=lambda events: any(
            e["event"] == "message" for e in events))
        assert [e["text"] for e in events if e["event"] == "message"] == ["本日の透析は中止です\n"]
        wait_for(lambda: (spool["sent"] / "message").exists(), 30,
                 message="smstools moving the message to sent")
    finally:
        smsd.terminate()
        smsd.wait(20)
        sim.stop()
