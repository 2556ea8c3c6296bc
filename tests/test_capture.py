"""`tsunagu modem capture`: an anonymised AT transcript of set-up, doctor and one send, and
the simulated modem replaying such a transcript as a test fixture."""
from __future__ import annotations

import json

from click.testing import CliRunner

from appliance.cli.modem import capture
from modem.capture import anonymise_line
from modem.device import Modem
from modem.sim.replay import ReplayModem


def captured(sim, tmp_path):
    out = tmp_path / "transcript.jsonl"
    result = CliRunner().invoke(capture, ["--port", str(sim.link), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_transcript_masks_imei_imsi_iccid_numbers_and_pdus(sim_modem, tmp_path):
    out = captured(sim_modem, tmp_path)
    text = out.read_text(encoding="utf-8")
    identity = sim_modem.card.identity
    for secret in (identity.imei, identity.imsi, identity.iccid, identity.number,
                   identity.number.lstrip("+")):
        assert secret not in text
    lines = [json.loads(raw) for raw in text.splitlines()]
    assert lines[0]["header"]["anonymised"] is True
    said = [item["line"] for item in lines[1:]]
    assert "AT+CGMI" in said and sim_modem.model.manufacturer in said
    assert any(line.startswith("AT+CMGS=") for line in said)          # the one send
    assert any(line.startswith("<Submit PDU") for line in said)       # its PDU, masked
    assert any(line.startswith("44010XXXXXXXXXX") for line in said)   # the IMSI, masked


def test_anonymising_keeps_the_kind_and_length_of_what_it_masks():
    assert anonymise_line('+CNUM: "","+819012345678",145') == '+CNUM: "","+819XXXXXXXXX",145'
    assert anonymise_line("+QCCID: 8981100000012345678") == "+QCCID: 89XXXXXXXXXXXXXXXXX"
    assert anonymise_line("867962012345678") == "X" * 15
    assert anonymise_line("+CSQ: 24,99") == "+CSQ: 24,99"


def test_a_captured_transcript_replays_as_a_modem_the_driver_can_set_up(sim_modem, tmp_path):
    out = captured(sim_modem, tmp_path)
    sim_modem.stop()  # the real one is gone; its transcript stands in for it
    replay = ReplayModem(tmp_path / "replayed", out).start()
    try:
        device = Modem.open(str(replay.link))
        try:
            identity = device.initialise(request_status_reports=False)
            assert (identity.manufacturer, identity.model) == \
                (sim_modem.model.manufacturer, sim_modem.model.model)
            assert identity.imei == "X" * 15                 # as the clinic's file has it
            assert device.profile.name in ("quectel", "simcom")
            assert device.sim_state() == "ready"
        finally:
            device.close()
    finally:
        replay.stop()
    assert replay.unknown == []
