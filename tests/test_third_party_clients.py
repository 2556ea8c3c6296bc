"""Other AT clients accept the simulated modem in both models: python-gsmmodem (a dependency
already, for its PDU codec) connects, identifies and sends. Debian's gammu: tests/test_gammu.py."""
from __future__ import annotations

from modem.sim import SimulatedModem
from tests.helpers import network_log


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
