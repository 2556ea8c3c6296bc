"""Property tests: any text survives the codec, and the counter agrees with the sender."""
from __future__ import annotations

import gsmmodem.pdu
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem import pdu
from modem.errors import MessageTooLong

NUMBER = "+819012345678"
any_text = st.text(min_size=1, max_size=400).filter(lambda t: pdu.count(t).parts <= pdu.MAX_PARTS)
gsm_text = st.text(alphabet=gsmmodem.pdu.GSM7_BASIC + "€[]{}|^~\\", min_size=1, max_size=700)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_any_text_survives_submit_encode_and_decode(text):
    pdus = pdu.encode_submit(NUMBER, text, reference=42)
    decoded = [pdu.decode(p.hex) for p in pdus]
    assert "".join(d.text for d in decoded) == text
    assert all(d.number == NUMBER for d in decoded)


@settings(max_examples=200, deadline=None)
@given(st.one_of(any_text, gsm_text.filter(lambda t: pdu.count(t).parts <= pdu.MAX_PARTS)))
def test_counter_agrees_with_the_sender(text):
    counted = pdu.count(text)
    assert counted.parts == len(pdu.split(text)) == len(pdu.encode_submit(NUMBER, text))
    assert counted.chars == len(text)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_no_part_holds_a_lone_surrogate_and_user_data_fits_140_octets(text):
    for part in pdu.split(text):
        part.encode("utf-16-be")  # raises on a lone surrogate
    for p in pdu.encode_submit(NUMBER, text):
        raw = bytes.fromhex(p.hex)
        assert p.tpdu_length == len(raw) - 1
        udl_index = 1 + 2 + 2 + (len("819012345678") + 1) // 2 + 3
        assert len(raw) - udl_index - 1 <= 140


@settings(max_examples=100, deadline=None)
@given(any_text)
def test_inbound_multipart_reassembles_to_the_original(text):
    joiner = pdu.Reassembler()
    results = [joiner.add(NUMBER, pdu.decode(h)) for h in pdu.encode_deliver(NUMBER, text, reference=9)]
    assert results[-1] == text
    assert all(r is None for r in results[:-1])


def test_gsmmodem_alone_cannot_encode_a_surname_outside_the_bmp():
    with pytest.raises(ValueError):
        gsmmodem.pdu.encodeSmsSubmitPdu(NUMBER, "𠮷野です")
    assert pdu.decode(pdu.encode_submit(NUMBER, "𠮷野です")[0].hex).text == "𠮷野です"


def test_a_surrogate_pair_at_the_part_boundary_moves_whole_into_the_next_part():
    text = "あ" * 66 + "😀" + "い" * 10
    parts = pdu.split(text)
    assert parts[0] == "あ" * 66 and parts[1].startswith("😀")


def test_ucs2_boundaries_70_single_671_refused():
    assert pdu.count("あ" * 70).parts == 1
    assert pdu.count("あ" * 71).parts == 2
    assert pdu.count("あ" * 670).parts == 10
    with pytest.raises(MessageTooLong):
        pdu.split("あ" * 671)


def test_gsm7_extension_characters_count_two_and_are_not_split():
    assert pdu.count("€" * 80).units == 160
    parts = pdu.split("a" * 152 + "€" + "b" * 10)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")


def test_empty_message_is_refused():
    with pytest.raises(pdu.EmptyMessage):
        pdu.encode_submit(NUMBER, "")


def test_concatenation_reference_is_the_callers_not_the_mr():
    pdus = pdu.encode_submit(NUMBER, "あ" * 100, reference=200)
    decoded = [pdu.decode(p.hex) for p in pdus]
    assert {d.concat.reference for d in decoded} == {200}
    assert all(d.mr == 0 for d in decoded)


def test_status_report_request_bit_follows_the_setting():
    assert pdu.decode(pdu.encode_submit(NUMBER, "x", request_status_report=True)[0].hex).status_report_requested
    assert not pdu.decode(pdu.encode_submit(NUMBER, "x", request_status_report=False)[0].hex).status_report_requested


@pytest.mark.parametrize("status,outcome", [(0x00, "delivered"), (0x20, "pending"), (0x41, "failed"), (0x60, "failed")])
def test_status_report_outcome_from_tp_st(status, outcome):
    from datetime import datetime
    now = datetime.now(pdu.JST)
    report = pdu.decode(pdu.encode_status_report(7, NUMBER, status, submitted_at=now, discharged_at=now))
    assert (report.mr, report.recipient, report.outcome) == (7, NUMBER, outcome)
