"""The AT session against the simulated modem and a scripted peer, over real ptys."""
from __future__ import annotations

import os
import threading
import tty

import pytest
import serial

from modem import pdu
from modem.at import ATSession, ATTimeout, CommandError, PortGone
from modem.sim import SimulatedModem
from tests.helpers import wait_for


@pytest.fixture
def session(tmp_path):
    modem = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl").start()
    port = serial.Serial(str(modem.link), 115200, timeout=0.05)
    at = ATSession(port)
    try:
        yield at, modem
    finally:
        port.close()
        modem.stop()


def test_echo_is_stripped_from_responses(session):
    at, _ = session
    assert at.command("AT+CGMI") == ["Quectel"]


def test_error_is_typed_and_the_session_stays_usable(session):
    at, _ = session
    with pytest.raises(CommandError):
        at.command("AT+NOPE")
    assert at.command("AT") == []


def test_cmgs_sends_a_japanese_multipart_message_through_the_prompt(session):
    at, modem = session
    at.command("ATE0")
    text = "停電のため本日の透析は中止です。𠮷田さん、自宅で待機してください。" * 3
    for part in pdu.encode_submit("+819012345678", text, reference=3):
        lines = at.command_with_prompt(f"AT+CMGS={part.tpdu_length}", part.hex)
        assert lines[0].startswith("+CMGS: ")
    # The network records a message before it acknowledges it: no wait needed here.
    assert modem.messages[-1]["text"] == text


def test_wrong_length_gives_a_permanent_cms_error(session):
    at, _ = session
    at.command("AT+CMEE=1")
    part = pdu.encode_submit("+819012345678", "x")[0]
    with pytest.raises(CommandError) as err:
        at.command_with_prompt(f"AT+CMGS={part.tpdu_length + 2}", part.hex)
    assert err.value.code == 304 and err.value.permanent


def modem_answers(master: int, *exchanges: tuple[bytes, bytes]) -> threading.Thread:
    """A scripted modem on the pty's other end: for each (end, answer), it reads until what
    it has read ends with *end*, then writes *answer* in one write. It answers only what it
    has read, as a modem does: a session drains lines that come before its command."""
    def run() -> None:
        for end, answer in exchanges:
            got = b""
            while not got.endswith(end):
                got += os.read(master, 1)
            os.write(master, answer)
    peer = threading.Thread(target=run, daemon=True)
    peer.start()
    return peer


@pytest.fixture
def scripted():
    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.Serial(os.ttyname(slave), 115200, timeout=0.05)
    at = ATSession(port)
    try:
        yield at, master
    finally:
        port.close()
        for fd in (master, slave):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed by the unplug test


def test_a_urc_in_the_middle_of_a_response_goes_to_the_urc_queue(scripted):
    at, master = scripted
    modem_answers(master, (b"AT+CSQ\r", b"\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"ME\",0\r\n\r\nOK\r\n"))
    assert at.command("AT+CSQ", timeout=5) == ["+CSQ: 20,99"]
    assert at.urcs.get(timeout=5) == '+CMTI: "ME",0'


def test_no_answer_times_out_and_a_late_answer_is_not_taken_for_the_next(scripted):
    at, master = scripted
    with pytest.raises(ATTimeout):
        at.command("AT+CSQ", timeout=0.3)
    late = b"\r\n+CSQ: 5,99\r\n\r\nOK\r\n"
    os.write(master, late)
    wait_for(lambda: at._port.in_waiting >= len(late), message="the late answer arrived")
    peer = modem_answers(master, (b"AT+CGMI\r", b"\r\nQuectel\r\n\r\nOK\r\n"))
    assert at.command("AT+CGMI", timeout=5) == ["Quectel"]
    peer.join(timeout=5)


def test_a_urc_while_idle_is_read_by_poll_and_a_partial_line_waits_for_its_end(scripted):
    at, master = scripted
    os.write(master, b"\r\n+CMTI: \"ME\",3\r\n\r\n+CDS: 6\r\n0006")
    def urcs_after_poll() -> int:
        at.poll(0.05)  # nothing reads the port behind our back: this does
        return at.urcs.qsize()
    wait_for(lambda: urcs_after_poll() == 1, message="the +CMTI read")
    assert at.urcs.get_nowait() == '+CMTI: "ME",3'
    os.write(master, b"070B911809214365F7\r\n")
    wait_for(lambda: urcs_after_poll() == 1, message="the whole +CDS read")
    assert at.urcs.get_nowait() == "+CDS: 6\n0006070B911809214365F7"


def test_the_port_vanishing_raises_port_gone(scripted):
    at, master = scripted
    os.close(master)
    with pytest.raises(PortGone):
        at.command("AT", timeout=5)


@pytest.mark.parametrize("burst", [
    b"\r\n+CDS: 6\r\n0006070B911809214365F7\r\n\r\n> ",   # a report just before the prompt
    b"\r\n> \r\n+CDS: 6\r\n0006070B911809214365F7\r\n",   # and just after it
])
def test_a_prompt_in_the_same_read_as_a_status_report_is_still_seen(scripted, burst):
    session, master = scripted
    # The burst goes in one write: one read on our side.
    modem_answers(master, (b"\r", burst), (b"\x1a", b"\r\n+CMGS: 9\r\n\r\nOK\r\n"))
    lines = session.command_with_prompt("AT+CMGS=10", "00AA", timeout=5)
    assert "+CMGS: 9" in lines
    assert session.urcs.get(timeout=5).startswith("+CDS: 6\n")


def test_a_dial_that_ends_at_once_returns_how_it_ended_and_later_ones_are_unsolicited(scripted):
    # Some modems answer ATD…; with the call's end itself (V.250 6.3.1) instead of OK.
    at, master = scripted
    modem_answers(master, (b"ATD+819012345678;\r", b"\r\nBUSY\r\n"),
                  (b"AT\r", b"\r\nOK\r\n\r\nNO CARRIER\r\n"))
    assert at.command("ATD+819012345678;", timeout=5) == ["BUSY"]
    assert at.command("AT", timeout=5) == []
    wait_for(lambda: at.poll(0.05) or not at.urcs.empty(), message="the NO CARRIER read")
    assert at.urcs.get_nowait() == "NO CARRIER"


def test_a_registration_notice_after_its_query_is_answered_is_unsolicited_again(scripted):
    at, master = scripted
    modem_answers(master, (b"AT+CREG?\r", b"\r\n+CREG: 1,1\r\n\r\nOK\r\n\r\n+CREG: 2\r\n"))
    assert at.command("AT+CREG?", timeout=5) == ["+CREG: 1,1"]
    wait_for(lambda: at.poll(0.05) or not at.urcs.empty(), message="the notice read")
    assert at.urcs.get_nowait() == "+CREG: 2"
