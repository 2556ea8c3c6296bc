"""The device API against the simulated modem over a real pty: queries, sending, status
reports, replies from storage, and every injected fault giving a typed error after which
the modem is still usable (or can be reopened)."""
from __future__ import annotations

import pytest

from modem import pdu
from modem.device import Inbound, Modem, StateChange, StatusReport, Unsolicited
from modem.errors import ATTimeout, CmeError, CmsError, MessageTooLong, PortGone
from modem.sim import SimulatedModem
from tests.helpers import wait_for

PATIENT = "+819012345678"
OTHER = "+818011112222"
THIRD = "+817033334444"


@pytest.fixture
def sim(sim_modem):
    return sim_modem


@pytest.fixture
def device(sim):
    modem = Modem.open(str(sim.link))
    modem.initialise()
    try:
        yield modem
    finally:
        modem.close()


def next_of(device: Modem, kind: type, timeout: float = 10.0):
    """The next event of *kind*, skipping others, within a deadline."""
    found = []

    def poll():
        event = device.next_event(0.05)
        if isinstance(event, kind):
            found.append(event)
        return found
    return wait_for(poll, timeout, interval=0, message=f"a {kind.__name__} event")[0]


def test_identify_reports_the_modem_and_the_sim(sim, device):
    identity = device.identify()
    assert (identity.manufacturer, identity.model) == (sim.model.manufacturer, sim.model.model)
    assert identity.revision == sim.model.revision  # without SIMCom's "+CGMR: " prefix
    assert device.profile.name == {"ec25": "quectel", "sim7600": "simcom"}[sim.model.key]
    assert identity.imei == sim.card.identity.imei
    assert identity.imsi == sim.card.identity.imsi
    assert identity.iccid == sim.card.identity.iccid


def test_queries_report_sim_registration_signal_operator_and_own_number(sim, device):
    assert device.sim_state() == "ready"
    registration = device.registration()
    assert registration.registered and registration.eps == "registered_home"
    signal = device.signal()
    assert (signal.csq, signal.dbm, signal.bars) == (24, -65, 4)
    assert device.operator() == "NTT DOCOMO"
    assert device.own_number() == sim.card.identity.number


def test_signal_99_is_unknown_not_a_number(sim, device):
    sim.set_signal(99)
    signal = device.signal()
    assert signal.dbm is None and signal.csq is None and signal.bars == 0
    sim.set_signal(5)
    assert (device.signal().dbm, device.signal().bars) == (-103, 1)


def test_japanese_multipart_text_with_non_bmp_reaches_the_phone_whole(sim, device):
    text = "停電のため本日の透析は中止です。𠮷田様、ご自宅で待機してください。🙏" * 3
    mrs = device.send_text(PATIENT, text, reference=42)
    assert len(mrs) == pdu.count(text).parts > 1
    assert len(set(mrs)) == len(mrs)
    wait_for(lambda: sim.messages, message="the message at the network")
    assert sim.messages[-1]["text"] == text and sim.messages[-1]["to"] == PATIENT


def test_text_over_ten_parts_is_refused_before_anything_is_sent(sim, device):
    with pytest.raises(MessageTooLong):
        device.send_text(PATIENT, "あ" * 671)
    assert sim.network.submits == 0


def test_status_reports_carry_the_mr_and_the_outcome(sim, device):
    sim.set_outcome(OTHER, "failed")
    delivered_mr = device.send_text(PATIENT, "テスト")[0]
    failed_mr = device.send_text(OTHER, "テスト")[0]
    reports = {r.mr: r for r in (next_of(device, StatusReport), next_of(device, StatusReport))}
    assert reports[delivered_mr].outcome == "delivered"
    assert reports[delivered_mr].recipient == PATIENT
    assert reports[failed_mr].outcome == "failed"


def test_a_number_set_to_no_report_gets_none(sim, device):
    sim.set_outcome(OTHER, "none")
    device.send_text(OTHER, "テスト")
    delivered_mr = device.send_text(PATIENT, "テスト")[0]
    # Reports come in send order with no delay: the first one seen is PATIENT's.
    assert next_of(device, StatusReport).mr == delivered_mr


def test_a_multipart_japanese_reply_is_read_from_storage_whole_and_then_deleted(sim, device):
    reply = "１ 来院できます。𠮷田です😊" + "よろしくお願いします。" * 8
    parts = sim.inject_sms(PATIENT, reply)
    assert parts > 1
    event = next_of(device, Inbound)
    assert (event.sender, event.text) == (PATIENT, reply)
    assert len(event.locations) == parts
    for store, index in event.locations:
        device.delete_stored(index, store)
    assert device.read_stored() == []


def test_a_reply_announced_during_a_send_is_kept_until_a_command_can_read_it(sim, device):
    # While the modem sends, only what came whole in a URC can be taken; a stored reply
    # (+CMTI) needs AT+CMGR, so it waits for the first call that may give commands.
    sim.inject_sms(PATIENT, "２ 行けません")
    assert wait_for(lambda: device.next_event(0.05, read_stored=False) or device.has_announced,
                    10, message="the +CMTI announcement read") is True
    event = next_of(device, Inbound)
    assert (event.sender, event.text) == (PATIENT, "２ 行けません")
    assert not device.has_announced


def test_replies_stored_while_nobody_listened_are_found_at_initialise(sim, tmp_path):
    sim.cnmi[1] = 1  # as the previous run left it: store and announce
    sim.inject_sms(PATIENT, "２")  # announced to nobody: the port was not open
    modem = Modem.open(str(sim.link))
    try:
        modem.initialise()
        event = next_of(modem, Inbound)
        assert (event.sender, event.text) == (PATIENT, "２")
    finally:
        modem.close()


def test_sim_pin_is_entered_from_configuration(tmp_path):
    sim = SimulatedModem(tmp_path / "modem1", pin="4321").start()
    modem = Modem.open(str(sim.link))
    try:
        identity = modem.initialise()  # no PIN configured: the modem answers, the SIM is locked
        assert identity.imsi is None
        assert modem.sim_state() == "pin_required"
        with pytest.raises(CmeError) as wrong:
            modem.enter_pin("0000")
        assert wrong.value.code == 16
        modem.initialise(pin="4321")
        assert modem.sim_state() == "ready"
    finally:
        modem.close()
        sim.stop()


# -- faults --------------------------------------------------------------------------------

def test_an_injected_cms_error_is_typed_temporary_and_the_next_send_works(sim, device):
    sim.fail_sends(500, count=1)
    with pytest.raises(CmsError) as failure:
        device.send_text(PATIENT, "テスト")
    assert failure.value.code == 500 and not failure.value.permanent
    assert device.send_text(PATIENT, "テスト")


def test_a_rejected_number_is_a_permanent_error_only_for_that_number(sim, device):
    sim.fail_sends(21, number=OTHER)
    with pytest.raises(CmsError) as failure:
        device.send_text(OTHER, "テスト")
    assert failure.value.permanent
    assert device.send_text(PATIENT, "テスト")


def test_a_command_with_no_answer_times_out_and_the_session_stays_usable(sim, device):
    sim.drop_next_command()
    with pytest.raises(ATTimeout):
        device.session.command("AT+CSQ", timeout=0.5)
    assert device.signal().bars == 4


def test_sim_removed_is_reported_and_sending_fails_temporarily(sim, device):
    sim.remove_sim()
    assert device.sim_state() == "not_inserted"
    assert not device.registration().registered
    with pytest.raises(CmsError) as failure:
        device.send_text(PATIENT, "テスト")
    assert failure.value.code == 310 and not failure.value.permanent
    sim.insert_sim()
    assert device.sim_state() == "ready"
    assert device.send_text(PATIENT, "テスト")


def test_not_registered_is_reported_and_sending_fails_with_no_network(sim, device):
    sim.set_registration("searching")
    assert device.registration().state == "searching"
    assert device.operator() is None
    with pytest.raises(CmsError) as failure:
        device.send_text(PATIENT, "テスト")
    assert failure.value.code == 331 and not failure.value.permanent
    sim.set_registration("home")
    assert device.send_text(PATIENT, "テスト")


def test_an_unplugged_port_raises_port_gone_and_the_modem_reopens_after_replug(sim, device):
    sim.unplug()
    with pytest.raises(PortGone):
        device.signal()
    with pytest.raises(PortGone):
        device.next_event(0.01)
    with pytest.raises(PortGone):
        Modem.open(str(sim.link))  # not back yet: the link is gone
    sim.replug()
    wait_for(lambda: sim.link.exists(), message="the port to come back")
    again = device.reopen()
    try:
        again.initialise()
        assert again.send_text(PATIENT, "復旧しました")
    finally:
        again.close()


def _abandon_at_the_prompt(sim, after_pdu: bool = False) -> None:
    """What a daemon killed mid-send leaves behind: a modem waiting at the AT+CMGS prompt
    (or still sending the PDU it was given, its answer to nobody)."""
    import serial
    submit = pdu.encode_submit(OTHER, "途中", reference=1)[0]
    port = serial.Serial(str(sim.link), 115200, timeout=0.1, exclusive=True)
    try:
        port.write(b"AT+CMGF=0\r")
        port.write(f"AT+CMGS={submit.tpdu_length}\r".encode())
        seen = bytearray()
        wait_for(lambda: seen.extend(port.read(64)) or b"> " in seen, message="the prompt")
        if after_pdu:
            port.write(submit.hex.encode() + b"\x1a")
            # Gone while the modem is still sending (closing the pty sooner would discard
            # the bytes, which a USB modem would already have had).
            wait_for(lambda: sim._busy, message="the modem busy sending")
    finally:
        port.close()


def test_a_modem_left_waiting_at_the_send_prompt_by_a_killed_program_is_taken_back(sim):
    _abandon_at_the_prompt(sim)
    modem = Modem.open(str(sim.link))
    try:
        modem.initialise()
        assert modem.signal().bars >= 0
        modem.send_text(PATIENT, "再開しました")
        wait_for(lambda: sim.messages, message="the message at the network")
        assert [(m["to"], m["text"]) for m in sim.messages] == [(PATIENT, "再開しました")]
    finally:
        modem.close()


def test_a_send_answered_to_a_killed_program_is_not_taken_for_the_next_answers(tmp_path):
    sim = SimulatedModem(tmp_path / "modem1", log=tmp_path / "net.jsonl", send_delay=0.8).start()
    try:
        _abandon_at_the_prompt(sim, after_pdu=True)
        modem = Modem.open(str(sim.link))
        try:
            modem.initialise()
            assert modem.sim_state() == "ready"
            assert modem.registration().registered
            assert modem.send_text(PATIENT, "再開しました")
            wait_for(lambda: len(sim.messages) == 2, message="both messages at the network")
            assert [m["text"] for m in sim.messages] == ["途中", "再開しました"]
        finally:
            modem.close()
    finally:
        sim.stop()


def test_work_done_while_the_modem_sends_runs_once_and_its_error_comes_after_the_answer(
        tmp_path):
    sim = SimulatedModem(tmp_path / "slow", send_delay=0.5).start()  # the network is slow
    device = Modem.open(str(sim.link))
    try:
        device.initialise()
        submit = pdu.encode_submit(PATIENT, "中止です")[0]
        ran = []
        assert device.send_pdu(submit, meanwhile=lambda: ran.append(len(sim.messages))) >= 0
        assert ran == [0]  # ran while the modem was sending, not after

        def broken() -> None:
            raise RuntimeError("database is locked")
        with pytest.raises(RuntimeError, match="locked"):
            device.send_pdu(submit, meanwhile=broken)
        wait_for(lambda: len(sim.messages) == 2, message="the second send at the network")
        assert device.sim_state() == "ready"  # nothing left over to misalign the session
    finally:
        device.close()
        sim.stop()


def test_a_report_announced_during_a_send_is_kept_and_read_after_it(sim, device):
    # The worker looks at what the modem says during a send; a stored report's announcement
    # (+CDSI) needs a command to read, so it waits until the send is answered.
    first = pdu.encode_submit(PATIENT, "中止です")[0]
    first_mr = device.send_pdu(first)
    seen = []

    def look_during_the_send() -> None:
        wait_for(lambda: seen.append(device.next_event(0.05, read_stored=False)) or
                 device.has_announced, 10, interval=0,
                 message="the first part's report announced during the second send")
    second = pdu.encode_submit(OTHER, "再開は未定です")[0]
    assert device.send_pdu(second, meanwhile=look_during_the_send) >= 0
    assert not any(isinstance(e, StatusReport) for e in seen)
    report = device.next_event(0.0)
    assert isinstance(report, StatusReport) and report.mr == first_mr
    assert report.location is not None  # stored: deleted once saved


def _announced_unread(device, count: int) -> None:
    """Listen (as during a send: nothing read) until *count* stored messages are announced."""
    wait_for(lambda: device.next_event(0.05, read_stored=False) is None and
             device.announced >= count, 10, interval=0,
             message=f"{count} stored messages announced")


def test_reports_announced_together_are_read_with_one_listing(sim, device):
    # Every command is a pause between two sends (tens of milliseconds on a real modem), and
    # a busy modem announces a report for each part: those waiting are listed at once.
    mrs = [device.send_pdu(pdu.encode_submit(number, "中止です")[0])
           for number in (PATIENT, OTHER, THIRD)]
    _announced_unread(device, 3)
    reads, listings = sim.commands["+CMGR"], sim.commands["+CMGL"]
    reports = [next_of(device, StatusReport) for _ in mrs]
    assert [r.mr for r in reports] == mrs
    assert (sim.commands["+CMGR"], sim.commands["+CMGL"]) == (reads, listings + 1)
    for report in reports:   # each where the modem stored it, to be deleted once saved
        device.delete_stored(report.location[1], report.location[0])
    assert device.read_stored() == []


def test_an_announced_message_gone_from_the_store_is_told_and_the_others_still_read(
        sim, device):
    first = device.send_pdu(pdu.encode_submit(PATIENT, "中止です")[0])
    second = device.send_pdu(pdu.encode_submit(OTHER, "中止です")[0])
    _announced_unread(device, 2)
    stored = device.read_stored()
    gone = next(index for index, report in stored if report.mr == first)
    device.delete_stored(gone, sim.report_store)
    events = [device.next_event(0.0), device.next_event(0.0)]
    assert isinstance(events[0], Unsolicited) and events[0].line.endswith(f",{gone}")
    assert isinstance(events[1], StatusReport) and events[1].mr == second
    assert not device.has_announced


def test_one_announced_message_gone_from_the_store_is_told_not_raised(sim, device):
    # A stored message deleted before its announcement was read (by another program, or
    # in a batch read before) is no reason to give up the modem.
    mr = device.send_pdu(pdu.encode_submit(PATIENT, "中止です")[0])
    _announced_unread(device, 1)
    [(index, report)] = device.read_stored()
    assert report.mr == mr
    device.delete_stored(index, sim.report_store)
    event = device.next_event(0.0)
    assert isinstance(event, Unsolicited) and event.line.endswith(f",{index}")
    assert device.sim_state() == "ready"


def test_the_modem_says_when_registration_and_the_sim_come_back_and_when_it_restarted(sim, device):
    def changes_until(last: StateChange) -> list[StateChange]:
        seen = [next_of(device, StateChange)]
        while seen[-1] != last:
            seen.append(next_of(device, StateChange))
        return seen
    sim.set_registration("searching")
    assert {c.line for c in changes_until(StateChange("registration", "searching", "+CEREG: 2"))} \
        == {"+CREG: 2", "+CGREG: 2", "+CEREG: 2"}
    sim.set_registration("home")
    changes_until(StateChange("registration", "registered_home", "+CEREG: 1"))
    sim.remove_sim()
    sim.insert_sim()
    assert StateChange("sim", "ready", "+CPIN: READY") in changes_until(
        StateChange("registration", "registered_home", "+CEREG: 1"))
    sim.reboot()
    last_notice = sim.model.boot_notices[-1]
    assert changes_until(StateChange("ready", None, last_notice)) == [
        StateChange("restarted", None, "RDY"), StateChange("sim", "ready", "+CPIN: READY"),
        *[StateChange("ready", None, n) for n in sim.model.boot_notices if "DONE" in n]]


@pytest.mark.parametrize("modem_model", ["sim7600"])
def test_a_sim7600_that_refuses_sms_after_a_reboot_sends_again_once_set_up_with_at_f(sim, device):
    sim.reboot()  # LilyGo-Modem-Series#340: SMS refused after a reboot until AT&F
    device.session.command("AT+CMEE=1")  # the reboot forgot it too
    part = pdu.encode_submit(PATIENT, "再開は未定です")[0]
    with pytest.raises(CmsError) as refused:
        device.send_pdu(part)
    assert refused.value.code == 500
    device.initialise()  # the SIMCom profile begins with AT&F
    assert device.send_pdu(part) >= 0


@pytest.mark.slow
def test_a_send_a_congested_network_answers_after_a_minute_is_sent_not_given_up(tmp_path):
    # Quectel's AT manual gives AT+CMGS up to 120 s, "determined by network": the day of an
    # earthquake is when it takes that long. Giving up at 60 s, as the driver did, made a
    # message on its way uncertain (an emergency then went twice) and reset the modem.
    sim = SimulatedModem(tmp_path / "modem0", model="ec25", send_delay=65.0).start()
    device = Modem.open(str(sim.link))
    try:
        device.initialise()
        part = pdu.encode_submit(PATIENT, "停電のため本日の透析は中止です")[0]
        assert isinstance(device.send_pdu(part), int)
        assert [m["text"] for m in sim.messages] == ["停電のため本日の透析は中止です"]
    finally:
        device.close()
        sim.stop()
