"""Voice calls through the device API against the simulated modem over a real pty: the
commands the appliance rings an unresponsive patient with (ATD…;, AT+CLCC, ATH)."""
from __future__ import annotations

import pytest

from modem.device import Call, Modem
from modem.sim import SimulatedModem
from tests.helpers import wait_for

NUMBER = "+819012345678"


@pytest.fixture
def opened(tmp_path, modem_model):
    sim = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl",
                         model=modem_model).start()
    modem = Modem.open(str(sim.link))
    modem.initialise()
    try:
        yield sim, modem
    finally:
        modem.close()
        sim.stop()


def _events(sim, kind):
    import json
    return [e for e in map(json.loads, sim.log_path.read_text().splitlines())
            if e["event"] == kind]


def test_a_call_nobody_answers_alerts_until_we_hang_up(opened):
    sim, modem = opened
    sim.set_call_outcome(NUMBER, "no_answer")
    assert modem.dial(NUMBER) is None
    (call,) = modem.calls()
    assert (call.number, call.incoming, call.stat) == (NUMBER, False, Call.ALERTING)
    modem.hang_up()
    assert modem.calls() == []
    assert [e["how"] for e in _events(sim, "call_end")] == ["hung_up"]


def test_a_busy_phone_ends_the_call_with_busy(opened):
    sim, modem = opened
    sim.set_call_outcome(NUMBER, "busy")
    assert modem.dial(NUMBER) is None
    assert modem.calls()[0].stat == Call.DIALING
    assert wait_for(lambda: modem.call_results(0.05), 5, message="BUSY") == ["BUSY"]
    assert modem.calls() == []


def test_a_phone_out_of_reach_ends_in_no_carrier_and_other_notices_are_kept(opened):
    sim, modem = opened
    sim.set_call_outcome(NUMBER, "unreachable")
    modem.dial(NUMBER)
    sim.inject_sms("+819087654321", "返信です")
    assert wait_for(lambda: modem.call_results(0.05), 5, message="NO CARRIER") == ["NO CARRIER"]
    # The reply that came meanwhile is not lost: the worker reads it between two sends.
    inbound = wait_for(lambda: modem.next_event(0.05), 5, message="the reply")
    assert inbound.text == "返信です"


def test_an_answered_call_becomes_active(opened):
    sim, modem = opened
    sim.set_call_outcome(NUMBER, "answer")
    modem.dial(NUMBER)
    wait_for(lambda: modem.calls() and modem.calls()[0].stat == Call.ACTIVE, 5,
             message="answered")
    modem.hang_up()
    assert _events(sim, "call_end")[-1]["answered"] is True
