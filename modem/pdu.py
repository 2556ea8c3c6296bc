"""SMS PDU codec: SMS-SUBMIT out, SMS-DELIVER and SMS-STATUS-REPORT in.

Built on python-gsmmodem-new's gsmmodem.pdu for what is sound there (the GSM 7-bit tables,
septet packing, address fields, timestamps, the decoder's field walk). Written here by hand
is what it gets wrong for us:
- its UCS2 encoder raises ValueError on characters outside the BMP (emoji, 𠮷 in a surname);
- its UCS2 splitter cuts a surrogate pair in two, so the phone shows garbage at the seam;
- it uses one counter for TP-MR and the concatenation reference;
- its UCS2 decoder returns lone surrogates instead of the real character.

count() and split() share one splitting routine, so the web UI's live counter can never
disagree with what the sender actually sends.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gsmmodem import pdu as gsm

from .errors import ModemError, MessageTooLong

MAX_PARTS = 10
SINGLE = {"gsm7": 160, "ucs2": 70}      # units in a message of one part
PER_PART = {"gsm7": 153, "ucs2": 67}    # units per part once a 6-octet UDH is needed
# 24 hours: long enough for a phone that was off during a power cut to come back,
# short enough that "treatment cancelled today" does not arrive next week.
VALIDITY_RELATIVE_24H = 0xA7
JST = timezone(timedelta(hours=9))


class PduError(ModemError, ValueError):
    """A PDU we cannot decode; permanent (retrying the same bytes cannot help)."""

    permanent = True


class EmptyMessage(ModemError, ValueError):
    permanent = True


@dataclass(frozen=True)
class TextCount:
    chars: int          # code points: what a person counts (𠮷 is one)
    encoding: str       # 'gsm7' or 'ucs2'
    units: int          # septets (extension chars count two) or UTF-16 code units
    parts: int
    per_part: int
    remaining: int      # units left in the last part


@dataclass(frozen=True)
class SubmitPdu:
    hex: str
    tpdu_length: int    # what AT+CMGS=<n> declares: octets after the SMSC field
    seq: int
    total: int


@dataclass(frozen=True)
class Concat:
    reference: int
    total: int
    seq: int


@dataclass(frozen=True)
class Deliver:
    sender: str
    text: str
    sent_at: datetime | None
    concat: Concat | None


@dataclass(frozen=True)
class StatusReport:
    mr: int
    recipient: str
    status: int
    outcome: str        # 'delivered' | 'pending' | 'failed'
    discharge_at: datetime | None


@dataclass(frozen=True)
class Submit:
    mr: int
    number: str
    text: str
    concat: Concat | None
    status_report_requested: bool


# gsmmodem's extension table maps 'ÿ' to an int (a page-break placeholder) that its own
# encoder then crashes on; only the real extension characters count as GSM 7-bit here.
_GSM7_EXTENSION = frozenset(k for k, v in gsm.GSM7_EXTENDED.items() if isinstance(v, str))


# ESC (0x1B) is the escape to the extension table, not a character a person can send.
_GSM7_BASIC = frozenset(gsm.GSM7_BASIC) - {"\x1b"}


def _is_gsm7(ch: str) -> bool:
    return ch in _GSM7_BASIC or ch in _GSM7_EXTENSION


def encoding_for(text: str) -> str:
    return "gsm7" if all(_is_gsm7(c) for c in text) else "ucs2"


def _cost(ch: str, encoding: str) -> int:
    if encoding == "gsm7":
        return 1 if ch in _GSM7_BASIC else 2
    return 2 if ord(ch) > 0xFFFF else 1


def _split(text: str) -> tuple[str, list[str], int]:
    """(encoding, parts, units). Never cuts a character: a surrogate pair or a GSM escape
    pair is one indivisible unit of cost 2, so a part may end one unit short."""
    encoding = encoding_for(text)
    units = sum(_cost(c, encoding) for c in text)
    if units <= SINGLE[encoding]:
        return encoding, ([text] if text else []), units
    limit = PER_PART[encoding]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = _cost(ch, encoding)
        if used + cost > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    return encoding, parts, units


def count(text: str) -> TextCount:
    """Characters and parts exactly as split() and encode_submit() will send them."""
    encoding, parts, units = _split(text)
    n = len(parts)
    per_part = SINGLE[encoding] if n <= 1 else PER_PART[encoding]
    last_units = sum(_cost(c, encoding) for c in parts[-1]) if parts else 0
    return TextCount(chars=len(text), encoding=encoding, units=units, parts=n,
                     per_part=per_part, remaining=per_part - last_units)


def split(text: str) -> list[str]:
    """The parts as sent. Raises EmptyMessage or MessageTooLong before anything is sent."""
    if not text:
        raise EmptyMessage("message is empty / 本文が空です")
    encoding, parts, units = _split(text)
    if len(parts) > MAX_PARTS:
        raise MessageTooLong(
            f"message needs {len(parts)} parts ({len(text)} characters); at most {MAX_PARTS} "
            f"({MAX_PARTS * PER_PART['ucs2']} characters in Japanese) / "
            f"本文が長すぎます（{len(parts)}通分、最大{MAX_PARTS}通）")
    return parts


def _user_data(part: str, encoding: str, udh: bytes) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for one part, UDH included."""
    if encoding == "ucs2":
        body = part.encode("utf-16-be")
        header = bytes([len(udh)]) + udh if udh else b""
        return len(header) + len(body), header + body
    septets = gsm.encodeGsm7(part)
    if udh:
        # Fill bits so the text starts on a septet boundary after the UDH (TS 23.040 9.2.3.24).
        shift = ((len(udh) + 1) * 8) % 7
        packed = gsm.packSeptets(septets, padBits=shift)
        udl = len(septets) + (1 if shift else 0) + len(udh) + 1
        return udl, bytes([len(udh)]) + udh + bytes(packed)
    return len(septets), bytes(gsm.packSeptets(septets))


def _concat_udh(reference: int, total: int, seq: int) -> bytes:
    return bytes([0x00, 0x03, reference & 0xFF, total, seq])


def encode_submit(number: str, text: str, *, reference: int = 0,
                  request_status_report: bool = True) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for *text* to E.164 *number*. *reference* is the 8-bit concatenation
    reference chosen by the caller; TP-MR is left 0 for the modem to assign."""
    parts = split(text)
    encoding = encoding_for(text)
    total = len(parts)
    out = []
    for seq, part in enumerate(parts, start=1):
        udh = _concat_udh(reference, total, seq) if total > 1 else b""
        first = 0x01 | 0x10  # SMS-SUBMIT, relative validity period
        if request_status_report:
            first |= 0x20
        if udh:
            first |= 0x40
        udl, ud = _user_data(part, encoding, udh)
        tpdu = bytearray([first, 0x00])
        tpdu += gsm._encodeAddressField(number)
        tpdu += bytes([0x00, 0x08 if encoding == "ucs2" else 0x00, VALIDITY_RELATIVE_24H, udl])
        tpdu += ud
        out.append(SubmitPdu(hex=("00" + tpdu.hex()).upper(), tpdu_length=len(tpdu),
                             seq=seq, total=total))
    return out


def _fix_surrogates(text: str) -> str:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return text


def _concat_of(decoded: dict) -> Concat | None:
    for ie in decoded.get("udh") or ():
        if isinstance(ie, gsm.Concatenation):
            return Concat(reference=ie.reference, total=ie.parts, seq=ie.number)
    return None


def outcome_of(status: int) -> str:
    """TP-ST (TS 23.040 9.2.3.15) to what staff need to know."""
    if status <= 0x1F:
        return "delivered"
    if status <= 0x3F:
        return "pending"     # the SC is still trying
    return "failed"          # permanent, or temporary with the SC no longer trying


def decode(pdu_hex: str) -> Deliver | StatusReport | Submit:
    try:
        d = gsm.decodeSmsPdu(pdu_hex)
    except Exception as exc:  # gsmmodem raises several types for malformed input
        raise PduError(f"cannot decode PDU {pdu_hex[:40]}…: {exc}") from exc
    kind = d["type"]
    if kind == "SMS-DELIVER":
        return Deliver(sender=d["number"], text=_fix_surrogates(d.get("text", "")),
                       sent_at=d.get("time"), concat=_concat_of(d))
    if kind == "SMS-STATUS-REPORT":
        return StatusReport(mr=d["reference"], recipient=d["number"], status=d["status"],
                            outcome=outcome_of(d["status"]), discharge_at=d.get("discharge"))
    first = bytes.fromhex(pdu_hex)[bytes.fromhex(pdu_hex)[0] + 1]
    return Submit(mr=d["reference"], number=d["number"], text=_fix_surrogates(d.get("text", "")),
                  concat=_concat_of(d), status_report_requested=bool(first & 0x20))


SMSC = "+819030101950"


def encode_deliver(sender: str, text: str, *, reference: int = 0,
                   sent_at: datetime | None = None) -> list[str]:
    """SMS-DELIVER PDUs as a phone's message reaches us (used by the simulated modem)."""
    parts = split(text)
    encoding = encoding_for(text)
    sent_at = sent_at or datetime.now(JST)
    total = len(parts)
    out = []
    for seq, part in enumerate(parts, start=1):
        udh = _concat_udh(reference, total, seq) if total > 1 else b""
        first = 0x04 | (0x40 if udh else 0)   # SMS-DELIVER, no more messages waiting
        udl, ud = _user_data(part, encoding, udh)
        pdu = bytearray(gsm._encodeAddressField(SMSC, smscField=True))
        pdu += bytes([first]) + gsm._encodeAddressField(sender)
        pdu += bytes([0x00, 0x08 if encoding == "ucs2" else 0x00])
        pdu += gsm._encodeTimestamp(sent_at) + bytes([udl]) + ud
        out.append(pdu.hex().upper())
    return out


def encode_status_report(mr: int, recipient: str, status: int, *, submitted_at: datetime,
                         discharged_at: datetime) -> str:
    """An SMS-STATUS-REPORT PDU (used by the simulated modem)."""
    pdu = bytearray(gsm._encodeAddressField(SMSC, smscField=True))
    pdu += bytes([0x06, mr & 0xFF]) + gsm._encodeAddressField(recipient)
    pdu += gsm._encodeTimestamp(submitted_at) + gsm._encodeTimestamp(discharged_at)
    pdu += bytes([status])
    return pdu.hex().upper()


class Reassembler:
    """Joins the parts of concatenated inbound messages; forgets incomplete ones after
    *max_age* seconds so a lost part cannot grow memory forever."""

    def __init__(self, max_age: float = 24 * 3600, clock=time.monotonic) -> None:
        self._pending: dict[tuple, tuple[float, dict[int, str]]] = {}
        self._max_age = max_age
        self._clock = clock

    def add(self, sender: str, deliver: Deliver) -> str | None:
        now = self._clock()
        self._pending = {k: v for k, v in self._pending.items() if now - v[0] < self._max_age}
        c = deliver.concat
        if c is None or c.total <= 1:
            return deliver.text
        key = (sender, c.reference, c.total)
        started, got = self._pending.setdefault(key, (now, {}))
        got[c.seq] = deliver.text
        if len(got) < c.total:
            return None
        del self._pending[key]
        return "".join(got[i] for i in sorted(got))
