"""ETWS cell broadcasts: the page codec (TS 23.041 9.4.1.2), the subscription and +CBM over a
real pty from the simulated modem, pages joined into one warning."""
from __future__ import annotations

import pytest

from modem import cbs, device
from modem.device import Modem
from modem.sim import SimulatedModem
from tests.helpers import wait_for

WARNING = ("緊急地震速報\n宮城県沖で地震発生。強い揺れに備えて下さい。𠮷田町でも震度６弱の"
           "揺れが予想されます。（気象庁）")


def _join(pages: list[str]) -> cbs.Broadcast:
    joined = cbs.Reassembler()
    whole = [joined.add(cbs.decode_page(p), 0.0) for p in pages]
    assert whole[:-1] == [None] * (len(pages) - 1)
    return whole[-1]


def test_a_long_japanese_warning_goes_in_pages_that_join_into_its_text():
    pages = cbs.encode_pages(4352, WARNING)
    assert len(pages) == 2 and all(len(bytes.fromhex(p)) == cbs.PAGE_OCTETS for p in pages)
    warning = _join(pages)
    assert warning.text == WARNING and warning.warning_type == "earthquake"
    assert warning.complete and warning.pages == 2


def test_a_character_outside_the_bmp_is_never_split_between_two_pages():
    text = "あ" * 40 + "𠮷" + "い" * 5   # the surrogate pair would straddle units 41 and 42
    pages = cbs.encode_pages(4353, text)
    assert cbs.page_text(cbs.decode_page(pages[0]))[0] == "あ" * 40
    assert _join(pages).text == text


def test_pages_in_any_order_and_gsm_7_bit_pages_decode():
    text = "ETWS TEST MESSAGE. " * 8
    pages = cbs.encode_pages(4355, text, dcs=cbs.DCS_GSM7)
    assert len(pages) == 2
    assert _join(list(reversed(pages))).text == text


def test_the_serial_number_and_page_parameter_are_read_as_the_standard_says():
    serial = cbs.serial_number(0x123, 5)
    page = cbs.decode_page(cbs.encode_pages(4354, "津波", serial=serial)[0])
    assert (page.message_id, page.page, page.pages) == (4354, 1, 1)
    assert page.emergency_alert and page.popup and page.update_number == 5
    assert page.message_code & 0xFF == 0x23
    # 0x00 is "one page of one" (TS 23.041 9.4.1.2.4).
    raw = bytearray(bytes.fromhex(cbs.encode_pages(4352, "地震")[0]))
    raw[5] = 0
    assert (cbs.decode_page(raw.hex()).page, cbs.decode_page(raw.hex()).pages) == (1, 1)


def test_ucs2_with_a_language_first_gives_the_language_and_the_text():
    # DCS 0x11: two GSM 7-bit characters packed into two octets, then UCS2 (TS 23.038 5).
    from gsmmodem import pdu as gsm
    content = bytes(gsm.packSeptets(gsm.encodeGsm7("ja"))) + "地震です".encode("utf-16-be")
    raw = (cbs.serial_number(1).to_bytes(2, "big") + (4352).to_bytes(2, "big") + bytes([0x11, 0x11])
           + content.ljust(cbs.CONTENT_OCTETS, b"\x00"))
    assert cbs.page_text(cbs.decode_page(raw.hex())) == ("地震です", "ja")


def test_a_page_that_never_comes_leaves_the_warning_incomplete_but_told():
    pages = cbs.encode_pages(4352, WARNING)
    joined = cbs.Reassembler()
    assert joined.add(cbs.decode_page(pages[0]), 100.0) is None
    assert joined.stale(110.0, 30) == []
    (late,) = joined.stale(131.0, 30)
    assert not late.complete and late.text == cbs.page_text(cbs.decode_page(pages[0]))[0]


@pytest.mark.parametrize("bad", ["zz", "00" * 5, "00" * 89])
def test_what_is_not_a_page_is_refused(bad):
    with pytest.raises(cbs.CbsError):
        cbs.decode_page(bad)


@pytest.fixture
def opened(tmp_path):
    sim = SimulatedModem(tmp_path / "modem0", log=tmp_path / "net.jsonl").start()
    modem = Modem.open(str(sim.link))
    try:
        yield sim, modem
    finally:
        modem.close()
        sim.stop()


def _next_warning(modem: Modem):
    return wait_for(lambda: (lambda e: e if isinstance(e, cbs.Broadcast) else None)(
        modem.next_event(0.05)), 10, message="the warning")


def test_the_modem_subscribes_to_etws_and_an_injected_earthquake_arrives_whole(opened):
    sim, modem = opened
    modem.initialise()
    assert modem.cell_broadcasts == "subscribed"
    assert modem.warning_subscription()[0]
    given = sim.inject_cbs(WARNING, etws="earthquake")
    assert given["given"] and given["pages"] == 2
    warning = _next_warning(modem)
    assert (warning.warning_type, warning.text, warning.complete) == ("earthquake", WARNING, True)


def test_a_lost_page_still_gives_the_warning_after_a_while(opened, monkeypatch):
    sim, modem = opened
    monkeypatch.setattr(device, "CBS_PAGE_WAIT", 0.2)
    modem.initialise()
    sim.inject_cbs(WARNING, etws="tsunami", skip_page=2)
    warning = _next_warning(modem)
    assert warning.warning_type == "tsunami" and not warning.complete
    assert WARNING.startswith(warning.text)


def test_a_modem_that_refuses_the_subscription_says_so_and_still_announces_replies(opened):
    sim, modem = opened
    sim.set_cell_broadcasts(False)
    modem.initialise()
    assert modem.cell_broadcasts == "refused" and "CSCB" in modem.cell_broadcast_detail
    assert not modem.warning_subscription()[0]
    assert not sim.inject_cbs("地震", etws="earthquake")["given"]
    sim.inject_sms("+819012345678", "１")
    inbound = wait_for(lambda: modem.next_event(0.05), 10, message="the reply")
    assert isinstance(inbound, device.Inbound) and inbound.text == "１"


def test_other_message_ids_are_not_given_to_a_modem_subscribed_to_etws(opened):
    sim, modem = opened
    modem.initialise()
    assert not sim.inject_cbs("area mail", message_id=43008)["given"]


def test_a_modem_that_rebooted_has_lost_its_subscription_and_it_is_made_again(opened):
    sim, modem = opened
    modem.initialise()
    sim.reboot(notices=False)
    assert not modem.settings_intact()
    modem.initialise()
    assert modem.warning_subscription()[0]
