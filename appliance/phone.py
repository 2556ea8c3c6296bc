"""Japanese mobile numbers: from what people type to E.164, or a clear refusal.

People write 090-1234-5678, 09012345678, +81 90 1234 5678, ０９０－１２３４－５６７８ (an IME's
full-width digits), sometimes with a note after it ("090-1234-5678 (娘)"). Only a number
that can receive an SMS is accepted: a Japanese mobile number (070/080/090), as the
phonenumbers library classifies it. A landline, a toll-free or an IP-phone number would
be queued, "sent", and never read by anyone, so they are refused with a reason.
"""
from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

REGION = "JP"
COUNTRY_CODE = 81

# Dash-like characters that NFKC leaves alone but people (and IMEs) use as hyphens:
# the katakana prolonged sound mark ー is the usual one in Japanese input.
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70"
                            "\u2043\ufe63"), "-")
# A number as people format it: digits with spaces, hyphens, dots and parentheses.
_NUMBER_PREFIX = re.compile(r"\+?[0-9][0-9 ().\-]*")
_NUMBER_ONLY = re.compile(r"\+?[0-9 ().\-]+")

MESSAGES = {
    "empty": ("電話番号が空です", "the number is empty"),
    "malformed": ("電話番号として読めません", "not a phone number"),
    "trailing_text": ("番号の後ろに文字があります。番号だけにしてください",
                      "text after the number; keep the number only"),
    "too_short": ("桁数が足りません", "too few digits"),
    "too_long": ("桁数が多すぎます", "too many digits"),
    "landline": ("固定電話の番号です。SMSを受け取れません",
                 "a landline number, which cannot receive SMS"),
    "toll_free": ("フリーダイヤルの番号です。SMSを受け取れません",
                  "a toll-free number, which cannot receive SMS"),
    "not_mobile": ("携帯電話の番号ではありません（070・080・090で始まる番号のみ）",
                   "not a mobile number (only numbers starting 070, 080 or 090)"),
    "not_japanese_mobile": ("日本の携帯電話の番号ではありません",
                            "not a Japanese mobile number"),
}


class PhoneError(ValueError):
    """A number we will not send to; `.reason` is a short code (see MESSAGES)."""

    def __init__(self, reason: str, text: str | None = None):
        self.reason = reason
        self.text = text
        self.message_ja, self.message_en = MESSAGES[reason]
        shown = f": {text!r}" if text else ""
        super().__init__(f"{self.message_ja} ({self.message_en}){shown}")

    def message(self, language: str = "ja") -> str:
        return self.message_en if language == "en" else self.message_ja


# An international call prefix written instead of "+": 00 (most of the world, and how many
# people write +81) or 010 (Japan's own): "0081 90-1234-5678", "010-81-90-1234-5678".
_DIAL_PREFIX = re.compile(r"^(?:00|010)(?=[1-9])")


def clean(text: str) -> str:
    """NFKC (full-width digits, ＋, spaces), dash-like characters made hyphens, and an
    international call prefix made "+"."""
    cleaned = unicodedata.normalize("NFKC", text).translate(_DASHES).strip()
    return _DIAL_PREFIX.sub("+", cleaned)


def normalise_mobile(text: str | None) -> str:
    """The E.164 form (+819012345678) of a Japanese mobile number, or PhoneError."""
    if text is None or not str(text).strip():
        raise PhoneError("empty")
    original = str(text)
    cleaned = clean(original)
    if not _NUMBER_ONLY.fullmatch(cleaned):
        prefix = _NUMBER_PREFIX.match(cleaned)
        digits = re.sub(r"\D", "", prefix.group()) if prefix else ""
        # "090-1234-5678 (自宅)": a whole number followed by a note.
        reason = "trailing_text" if len(digits) >= 10 else "malformed"
        raise PhoneError(reason, original)
    number = _parse(cleaned, original)
    _check_mobile(number, original)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse(cleaned: str, original: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(cleaned, REGION)
    except NumberParseException as exc:
        too_short = (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD)
        reason = "too_short" if exc.error_type in too_short else "malformed"
        raise PhoneError(reason, original) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in (phonenumbers.ValidationResult.TOO_SHORT,
                    phonenumbers.ValidationResult.INVALID_LENGTH) and number.country_code == 81:
        raise PhoneError("too_short", original)
    if possible == phonenumbers.ValidationResult.TOO_LONG:
        raise PhoneError("too_long", original)
    if possible == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        raise PhoneError("malformed", original)
    return number


def _check_mobile(number: phonenumbers.PhoneNumber, original: str) -> None:
    national = str(number.national_number)
    if number.country_code != COUNTRY_CODE:
        if phonenumbers.is_valid_number(number):
            raise PhoneError("not_japanese_mobile", original)
        raise PhoneError("malformed", original)
    if not phonenumbers.is_valid_number(number):
        # A mobile prefix with the wrong length is the common typo: say which way it is off.
        if national[:2] in ("70", "80", "90") and len(national) != 10:
            raise PhoneError("too_short" if len(national) < 10 else "too_long", original)
        raise PhoneError("malformed", original)
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.MOBILE:
        return
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise PhoneError("landline", original)
    if kind == PhoneNumberType.TOLL_FREE:
        raise PhoneError("toll_free", original)
    raise PhoneError("not_mobile", original)


def is_mobile(text: str | None) -> bool:
    try:
        normalise_mobile(text)
    except PhoneError:
        return False
    return True


# A Japanese mobile number in E.164, which phonenumbers writes nationally as 0X0-XXXX-XXXX
# (not 0800-…: 080 followed by 0 is free dial, written otherwise).
_JP_MOBILE = re.compile(r"\+81([789]0)([1-9]\d{3})(\d{4})")


def display_number(e164: str) -> str:
    """The national form staff read and dial: +819012345678 → 090-1234-5678."""
    # Every number the appliance sends to is such a mobile number: formatting it directly
    # takes a microsecond, phonenumbers a third of a millisecond (a page of 200 recipients
    # spent 60 ms in it).
    mobile = _JP_MOBILE.fullmatch(e164)
    if mobile:
        return "0{}-{}-{}".format(*mobile.groups())
    try:
        number = phonenumbers.parse(e164, REGION)
    except NumberParseException:
        return e164
    if number.country_code != COUNTRY_CODE:
        return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


def search_digits(text: str) -> str | None:
    """Digits to look for in stored E.164 numbers when staff search by a partial number.

    "090-1000" becomes "+81901000" (a prefix of the E.164 form); "1234" stays "1234"
    (anywhere in the number); None when the text has no digits.
    """
    cleaned = clean(text)
    digits = re.sub(r"\D", "", cleaned)
    if not digits:
        return None
    if cleaned.startswith("+"):
        return "+" + digits
    if digits.startswith("0") and not digits.startswith("00"):
        return "+81" + digits[1:]
    return digits
