"""The simulated modem answers AT over a real pty, as a third-party client sees it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import serial

from modem import pdu
from tests.helpers import network_log, wait_for


@pytest.fixture
def port(sim_modem):
    with serial.Serial(str(sim_modem.link), 115200, timeout=5) as s:
        yield s


def exchange(port, data: bytes, until: bytes = b"OK\r\n") -> bytes:
    port.write(data)
    got = b""
    while not got.endswith(until) and not (b"ERROR" in got and got.endswith(b"\r\n")):
        chunk = port.read(1)
        assert chunk, f"no answer, got {got!r}"
        got += chunk
    return got


def test_echo_is_on_after_power_up_and_off_after_ate0(port):
    assert exchange(port, b"AT\r") == b"AT\r\r\nOK\r\n"
    assert exchange(port, b"ATE0\r").startswith(b"ATE0\r")
    assert exchange(port, b"AT\r") == b"\r\nOK\r\n"


def test_bytes_arriving_one_at_a_time_make_one_command(port, sim_modem):
    exchange(port, b"ATE0\r")
    for b in b"AT+CGMI":
        port.write(bytes([b]))
    maker = sim_modem.model.manufacturer.encode()
    assert exchange(port, b"\r") == b"\r\n" + maker + b"\r\n\r\nOK\r\n"


def test_chained_commands_answer_each_then_one_final_code(port):
    exchange(port, b"ATE0\r")
    out = exchange(port, b"AT+CMEE=1;+CREG=2;+CREG?\r")
    assert b"+CREG: 2,1," in out and out.count(b"OK") == 1


def test_unknown_command_answers_error(port):
    exchange(port, b"ATE0\r")
    assert exchange(port, b"AT+NOPE\r").endswith(b"ERROR\r\n")


def test_cmgs_prompt_is_exact_and_a_japanese_message_reaches_the_network_log(port, sim_modem):
    exchange(port, b"ATE0\r")
    text = "停電のため本日の透析は中止です。𠮷田さん、自宅で待機してください。" * 2
    parts = pdu.encode_submit("+819012345678", text, reference=5)
    for part in parts:
        assert exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ") == b"\r\n> "
        out = exchange(port, part.hex.encode() + b"\x1a")
        assert b"+CMGS: " in out
    log = network_log(sim_modem.log_path, until=lambda events: any(
        e["event"] == "message" for e in events))
    log = [e for e in log if e["event"] != "report"]  # when its report fell due: not asked
    assert [e["event"] for e in log] == ["submit"] * len(parts) + ["message"]
    assert log[-1]["text"] == text and log[-1]["to"] == "+819012345678"


def test_a_pdu_in_pieces_is_echoed_whole_and_a_command_behind_ctrl_z_waits_for_the_answer(
        port, sim_modem):
    # Echo stays on (as after power-up): the PDU text comes back as typed, whatever pieces
    # it arrived in, and "AT" written in the same piece as Ctrl-Z is answered after +CMGS.
    part = pdu.encode_submit("+819012345678", "停電です𠮷")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    text = part.hex.encode()
    for piece in (text[:1], text[1:7], text[7:]):
        port.write(piece)
    out = exchange(port, b"\x1aAT\r", until=b"OK\r\nAT\r\r\nOK\r\n")
    assert out.startswith(text) and b"+CMGS: " in out
    wait_for(lambda: sim_modem.messages, message="the message at the network")
    assert sim_modem.messages[0]["text"] == "停電です𠮷"


def test_cmgs_with_a_wrong_declared_length_is_refused_and_nothing_is_sent(port, sim_modem):
    exchange(port, b"ATE0\rAT+CMEE=1\r")
    part = pdu.encode_submit("+819012345678", "test")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length + 1}\r".encode(), until=b"> ")
    assert exchange(port, part.hex.encode() + b"\x1a").endswith(b"+CMS ERROR: 304\r\n")
    assert sim_modem.messages == []


def test_esc_cancels_the_prompt_and_sends_nothing(port, sim_modem):
    exchange(port, b"ATE0\r")
    exchange(port, b"AT+CMGS=20\r", until=b"> ")
    assert exchange(port, b"\x1b") == b"\r\nOK\r\n"
    assert sim_modem.messages == []
    assert exchange(port, b"AT\r") == b"\r\nOK\r\n"


def test_a_network_holding_sends_answers_nothing_until_released_then_answers_in_order(
        port, sim_modem):
    exchange(port, b"ATE0\r")
    sim_modem.hold_sends()
    part = pdu.encode_submit("+819012345678", "停電です")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    port.write(part.hex.encode() + b"\x1a")
    wait_for(lambda: sim_modem.status()["held_sends"] == 1, message="the send held")
    assert port.in_waiting == 0 and sim_modem.messages == []  # no answer while held
    sim_modem.release_sends()
    assert exchange(port, b"").startswith(b"\r\n+CMGS: ")
    wait_for(lambda: sim_modem.messages, message="the message at the network")
    assert sim_modem.status()["held_sends"] == 0 and not sim_modem.status()["holding_sends"]


def test_tsunagu_sim_runs_as_a_command_and_stops_on_sigterm(tmp_path):
    link = tmp_path / "modem0"
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "sim", "--link", str(link)],
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(link.exists, message="the sim's symlink")
        with serial.Serial(str(link), 115200, timeout=5) as s:
            assert exchange(s, b"AT\r").endswith(b"OK\r\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not os.path.lexists(link)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_report_is_stored_and_announced_with_cdsi_when_the_client_asks(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    exchange(port, b'AT+CPMS="ME","ME","ME";+CNMI=2,1,0,2,0\r')
    part = pdu.encode_submit("+819012345678", "テスト")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    sent = exchange(port, part.hex.encode() + b"\x1a")
    mr = int(sent.split(b"+CMGS: ")[1].split(b"\r")[0])
    urc = exchange(port, b"", until=b"\r\n") + exchange(port, b"", until=b"\r\n")
    assert b'+CDSI: "ME",0' in urc
    stored = exchange(port, b"AT+CMGR=0\r").decode().split("\r\n")
    report = pdu.decode(stored[stored.index("OK") - 2])
    assert isinstance(report, pdu.StatusReport)
    assert (report.mr, report.outcome) == (mr, "delivered")


def test_unknown_commands_and_empty_stores_answer_like_a_quectel(port):
    exchange(port, b"ATE0;+CMEE=1\r")
    assert exchange(port, b"AT+FOOBAR\r").endswith(b"\r\nERROR\r\n")
    assert b'+CSCA: "+819030101950",145' in exchange(port, b"AT+CSCA?\r")
    assert exchange(port, b"AT+CMGR=3\r").endswith(b"+CMS ERROR: 321\r\n")
    assert b'+CPMS: "SM",0,50,"SM",0,50,"SM",0,50' in exchange(port, b"AT+CPMS?\r")


def _send_one(port, number="+819012345678") -> int:
    part = pdu.encode_submit(number, "テスト")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    sent = exchange(port, part.hex.encode() + b"\x1a")
    return int(sent.split(b"+CMGS: ")[1].split(b"\r")[0])


def _report_falls_due_with_the_port_closed(sim_modem, cnmi: bytes) -> bytes:
    """Send one part, close the port before its report is due, reopen: what is there?"""
    sim_modem.set_report_delay(0.3)
    with serial.Serial(str(sim_modem.link), 115200, timeout=5) as s:
        exchange(s, b"ATE0;+CMEE=1\r")
        exchange(s, b'AT+CPMS="ME","ME","ME";' + cnmi + b"\r")
        _send_one(s)
    network_log(sim_modem.log_path, until=lambda events: any(
        e["event"] == "report" and not e["client"] for e in events))
    with serial.Serial(str(sim_modem.link), 115200, timeout=0.5) as s:
        unread = s.read(200)  # anything the modem said while nobody had the port open
        return unread + exchange(s, b"AT+CMGL=4\r")


def test_a_cds_routed_to_a_port_nobody_reads_is_gone(sim_modem):
    got = _report_falls_due_with_the_port_closed(sim_modem, b"+CNMI=2,1,0,1,0")
    assert b"+CDS" not in got and b"+CMGL:" not in got


def test_a_report_routed_to_storage_waits_there_for_the_next_client(sim_modem):
    got = _report_falls_due_with_the_port_closed(sim_modem, b"+CNMI=2,1,0,2,0")
    listing = [line for line in got.decode().split("\r\n") if line]
    header = next(i for i, line in enumerate(listing) if line.startswith("+CMGL:"))
    assert isinstance(pdu.decode(listing[header + 1]), pdu.StatusReport)


def _two_line_urc(port) -> list[str]:
    """A +CDS/+CMT: its header line and its PDU line."""
    lines: list[str] = []
    while len(lines) < 2:
        line = exchange(port, b"", until=b"\r\n").decode().strip()
        if line:
            lines.append(line)
    return lines


def test_csms_1_holds_the_next_cds_until_cnma_and_cnma_is_refused_under_csms_0(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    assert exchange(port, b"AT+CSMS?\r").startswith(b"\r\n+CSMS: 0,1,1,1")
    assert exchange(port, b"AT+CNMA\r").endswith(b"+CMS ERROR: 340\r\n")
    assert b"+CSMS: 1,1,1" in exchange(port, b"AT+CSMS=1;+CNMI=2,1,0,1,0\r")
    sim_modem.set_report_delay(0.2)  # both sends answered before the first report
    first, second = _send_one(port), _send_one(port, "+819012345679")
    assert _two_line_urc(port)[0].startswith("+CDS: ")
    port.timeout = 0.3
    assert port.read(100) == b""  # the second report waits for the acknowledgement
    port.timeout = 5
    assert exchange(port, b"AT+CNMA\r").endswith(b"OK\r\n")
    assert pdu.decode(_two_line_urc(port)[1]).mr == second != first


def test_csms_1_with_no_cnma_turns_routing_off_as_ts_27005_says(port, sim_modem):
    sim_modem.ack_timeout = 0.2
    exchange(port, b"ATE0;+CMEE=1;+CSMS=1;+CNMI=2,1,0,1,0\r")
    _send_one(port)
    _two_line_urc(port)
    wait_for(lambda: sim_modem.cnmi[1] == sim_modem.cnmi[3] == 0,
             message="routing turned off after the acknowledgement timed out")
    assert b"+CNMI: 2,0,0,0,0" in exchange(port, b"AT+CNMI?\r")


# -- what a field installation meets (issue 13) -----------------------------------------------

def test_each_model_names_its_iccid_command_and_refuses_the_other_vendors(port, sim_modem):
    exchange(port, b"ATE0\r")
    own, other = {"ec25": (b"AT+QCCID\r", b"AT+CICCID\r"),
                  "sim7600": (b"AT+CICCID\r", b"AT+QCCID\r")}[sim_modem.model.key]
    assert sim_modem.card.identity.iccid.encode() in exchange(port, own)
    assert exchange(port, other).endswith(b"ERROR\r\n")


def test_without_ims_a_send_fails_as_sms_over_lte_does(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    sim_modem.set_ims(False)
    part = pdu.encode_submit("+819012345678", "テスト")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    assert exchange(port, part.hex.encode() + b"\x1a").endswith(b"+CMS ERROR: 500\r\n")
    assert b"+CIREG: 0,0" in exchange(port, b"AT+CIREG?\r")
    sim_modem.set_ims(True)
    assert b"+CIREG: 0,1" in exchange(port, b"AT+CIREG?\r")


@pytest.mark.parametrize("modem_model", ["ec25"])
def test_a_wrong_carrier_profile_keeps_ims_off_until_autoselect_and_a_reset(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    sim_modem.set_carrier_profile("Commercial-KDDI")  # a docomo SIM in a KDDI-configured modem
    assert b'+QCFG: "ims",0,0' in exchange(port, b'AT+QCFG="ims"\r')
    listing = exchange(port, b'AT+QMBNCFG="List"\r')
    assert b'"List",2,1,1,"Commercial-KDDI"' in listing
    exchange(port, b'AT+QMBNCFG="AutoSel",1;+CFUN=1,1\r')
    port.timeout = 1
    port.read(200)  # the boot notices
    port.timeout = 5
    exchange(port, b"ATE0\r")
    assert b'+QCFG: "ims",0,1' in exchange(port, b'AT+QCFG="ims"\r')


def test_network_time_is_read_with_the_models_command_and_the_offset(port, sim_modem):
    from datetime import datetime, timedelta, timezone
    exchange(port, b"ATE0\r")
    sim_modem.set_network_time_offset(3 * 3600)
    expected = datetime.now(timezone.utc) + timedelta(hours=3)
    if sim_modem.model.key == "ec25":
        answer = exchange(port, b"AT+QLTS=1\r").decode()
        stamp = answer.split('"')[1]
        got = datetime.strptime(stamp[:19], "%Y/%m/%d,%H:%M:%S").replace(tzinfo=timezone.utc)
    else:
        assert b'"80/01/06,00:00:00+00"' in exchange(port, b"AT+CCLK?\r")  # before +CTZU=1
        exchange(port, b"AT+CTZU=1\r")
        stamp = exchange(port, b"AT+CCLK?\r").decode().split('"')[1]
        local = datetime.strptime(stamp[:17], "%y/%m/%d,%H:%M:%S")
        got = (local - timedelta(hours=9)).replace(tzinfo=timezone.utc)
        assert stamp.endswith("+36")
    assert abs((got - expected).total_seconds()) < 5


def test_an_empty_sms_centre_refuses_sends_and_cres_restores_it_from_the_sim(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    sim_modem.clear_smsc()
    assert b'+CSCA: "",129' in exchange(port, b"AT+CSCA?\r")
    part = pdu.encode_submit("+819012345678", "テスト")[0]
    assert exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode()).endswith(b"+CMS ERROR: 330\r\n")
    exchange(port, b"AT+CRES\r")
    assert b'+CSCA: "+819030101950",145' in exchange(port, b"AT+CSCA?\r")


def test_a_denied_registration_says_why_with_cereg_3(port, sim_modem):
    exchange(port, b"ATE0\r")
    sim_modem.set_registration("denied")
    sim_modem.set_reject_cause(7)
    exchange(port, b"AT+CEREG=3\r")
    assert b"+CEREG: 3,3,,,,0,7" in exchange(port, b"AT+CEREG?\r")


def test_a_voice_call_dials_lists_and_hangs_up_and_an_incoming_one_rings(port, sim_modem):
    exchange(port, b"ATE0;+CLIP=1;+CVHU=0\r")
    assert exchange(port, b"ATD+819012345678;\r").endswith(b"OK\r\n")
    assert b'+CLCC: 1,0,3,0,0,"+819012345678",145' in exchange(port, b"AT+CLCC\r")
    exchange(port, b"ATH\r")
    assert b"+CLCC" not in exchange(port, b"AT+CLCC\r")
    sim_modem.ring("+819087654321")
    assert exchange(port, b"", until=b"RING\r\n").endswith(b"RING\r\n")
    assert b'+CLIP: "+819087654321",145' in exchange(port, b"", until=b"\r\n") + \
        exchange(port, b"", until=b"\r\n")
    exchange(port, b"ATA\r")
    assert b'+CLCC: 2,1,0,0,0,"+819087654321",145' in exchange(port, b"AT+CLCC\r")
    sim_modem.hang_up_far_end()
    assert exchange(port, b"", until=b"NO CARRIER\r\n").endswith(b"NO CARRIER\r\n")


def test_a_hung_sms_stack_answers_at_but_never_a_send_until_a_reset(port, sim_modem):
    exchange(port, b"ATE0;+CMEE=1\r")
    sim_modem.hang("sms")
    part = pdu.encode_submit("+819012345678", "テスト")[0]
    exchange(port, f"AT+CMGS={part.tpdu_length}\r".encode(), until=b"> ")
    port.write(part.hex.encode() + b"\x1a")
    port.timeout = 0.5
    assert b"+CMGS" not in port.read(200)
    port.timeout = 5
    assert exchange(port, b"AT\r").endswith(b"OK\r\n")  # commands still answered
    exchange(port, b"AT+CFUN=1,1\r")
    assert sim_modem.hung is None


def test_a_total_hang_answers_nothing_until_a_power_cycle(sim_modem):
    sim_modem.hang("total")
    with serial.Serial(str(sim_modem.link), 115200, timeout=0.5) as s:
        s.write(b"AT\r")
        assert s.read(20) == b""
    sim_modem.unplug()
    sim_modem.replug()
    with serial.Serial(str(sim_modem.link), 115200, timeout=5) as s:
        assert exchange(s, b"AT\r").endswith(b"OK\r\n")
