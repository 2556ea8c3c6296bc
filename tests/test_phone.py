"""Japanese mobile numbers: the forms people type are accepted, the rest refused with a reason."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.phone import PhoneError, display_number, normalise_mobile, search_digits


@pytest.mark.parametrize("text", [
    "090-1234-5678",
    "09012345678",
    "090 1234 5678",
    "+81 90 1234 5678",
    "+81-90-1234-5678",
    "+819012345678",
    "０９０－１２３４－５６７８",          # full-width digits and hyphens (an IME)
    "＋８１　９０　１２３４　５６７８",     # full-width plus and ideographic spaces
    "090ー1234ー5678",                  # katakana prolonged sound mark used as a hyphen
    "090−1234−5678",                    # minus sign
    "(090) 1234-5678",
    "  090-1234-5678\t",
])
def test_forms_people_type_become_e164(text):
    assert normalise_mobile(text) == "+819012345678"


@pytest.mark.parametrize("text", ["070-1234-5678", "080-1234-5678"])
def test_070_and_080_are_mobile_too(text):
    assert normalise_mobile(text).startswith(("+8170", "+8180"))


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    ("082-000-0000", "landline"),
    ("03-1234-5678", "landline"),
    ("0120-000-000", "toll_free"),
    ("0120-123-456", "toll_free"),
    ("050-1234-5678", "not_mobile"),        # IP phone
    ("0570-000-000", "not_mobile"),         # navi dial
    ("020-1234-5678", "not_mobile"),        # M2M / pager: not a person's phone
    ("090-1000-90", "too_short"),
    ("090-1234-567", "too_short"),
    ("090", "too_short"),
    ("090-1234-56789", "too_long"),
    ("090-1234-5678 (自宅)", "trailing_text"),
    ("090-1000-9008 (娘)", "trailing_text"),
    ("090 1234 5678 内線3", "trailing_text"),
    ("携帯 090-1234-5678", "malformed"),
    ("abc", "malformed"),
    ("+1 415 555 2671", "not_japanese_mobile"),
    ("+44 7911 123456", "not_japanese_mobile"),
])
def test_refusals_carry_a_reason_code_and_a_bilingual_message(text, reason):
    with pytest.raises(PhoneError) as info:
        normalise_mobile(text)
    error = info.value
    assert error.reason == reason
    assert isinstance(error, ValueError)
    assert error.message_ja in str(error) and error.message_en in str(error)
    assert error.message("en") == error.message_en and error.message("ja") == error.message_ja


def test_landline_message_says_it_cannot_receive_sms():
    with pytest.raises(PhoneError, match="cannot receive SMS"):
        normalise_mobile("082-000-0000")


@given(st.sampled_from(["70", "80", "90"]), st.integers(0, 99_999_999))
def test_any_mobile_number_round_trips_through_display_form(prefix, rest):
    e164 = f"+81{prefix}{rest:08d}"
    try:
        normalise_mobile(e164)
    except PhoneError as exc:
        if prefix == "80" and rest < 10_000_000:
            assert exc.reason == "toll_free"  # 0800-xxx-xxxx is free dial, not a mobile
        else:
            # A few blocks are unassigned; phonenumbers knows them. Nothing else is allowed.
            assert exc.reason == "malformed"
        return
    shown = display_number(e164)
    assert shown == f"0{prefix}-{rest // 10000:04d}-{rest % 10000:04d}"
    assert normalise_mobile(shown) == e164


def test_display_number_for_staff():
    assert display_number("+819012345678") == "090-1234-5678"


def test_search_digits_turn_national_prefixes_into_e164_prefixes():
    assert search_digits("090-1000") == "+81901000"
    assert search_digits("1234") == "1234"
    assert search_digits("+81 90") == "+8190"
    assert search_digits("山田") is None


@given(prefix=st.sampled_from(["70", "80", "90", "50", "3", "120", "800"]),
       rest=st.integers(0, 99_999_999))
def test_display_number_writes_every_number_as_phonenumbers_does(prefix, rest):
    # The quick path for mobile numbers gives phonenumbers' own national form, and any
    # other number (free dial, IP phone, landline) still goes through phonenumbers.
    import phonenumbers
    e164 = f"+81{prefix}{rest:08d}"
    number = phonenumbers.parse(e164, "JP")
    assert display_number(e164) == phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.NATIONAL)
