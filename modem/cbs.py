"""Cell broadcast pages (TS 23.041 9.4.1.2): the codec for ETWS warnings.

Japan's 緊急地震速報 and 津波警報 reach phones as ETWS cell broadcasts. A modem subscribed
with AT+CSCB and `+CNMI` bm=2 gives each page to the port in PDU mode as
`+CBM: <length>` followed by the page in hex: 88 octets —

    serial number (2)   GS (2 bits), message code (10 bits), update number (4 bits)
    message id (2)      4352-4359 for ETWS (TS 23.041 9.4.1.2.2)
    data coding (1)     TS 23.038 5: GSM 7-bit, 8-bit or UCS2, maybe a language first
    page parameter (1)  page number (high nibble) of the total (low nibble); 0x00 is 1 of 1
    content (82)        93 GSM 7-bit characters or 41 UCS2 units, padded with CR

A warning of several pages is whole once every page with the same serial number and
message id has come (`Reassembler`). The simulated modem encodes pages with
`encode_pages()`; the daemon decodes them with `decode_page()`.
"""
from __future__ import annotations

from dataclasses import dataclass

from gsmmodem import pdu as gsm

PAGE_OCTETS = 88
CONTENT_OCTETS = 82
GSM7_PER_PAGE = CONTENT_OCTETS * 8 // 7      # 93
UCS2_PER_PAGE = CONTENT_OCTETS // 2          # 41 UTF-16 units
MAX_PAGES = 15

ETWS_FIRST, ETWS_LAST = 4352, 4359
# TS 23.041 9.4.1.2.2: what each ETWS message identifier warns of; 4357-4359 are the
# future extensions ("other" until they are given a meaning).
ETWS_TYPES = {4352: "earthquake", 4353: "tsunami", 4354: "earthquake_tsunami", 4355: "test",
              4356: "other", 4357: "other", 4358: "other", 4359: "other"}
WARNING_TYPES = ("earthquake", "tsunami", "earthquake_tsunami", "test", "other")
TYPE_IDS = {"earthquake": 4352, "tsunami": 4353, "earthquake_tsunami": 4354, "test": 4355,
            "other": 4356}
SUBSCRIPTION = f"{ETWS_FIRST}-{ETWS_LAST}"   # AT+CSCB's <mids>

DCS_UCS2 = 0x48   # general data coding, uncompressed, no class, UCS2
DCS_GSM7 = 0x0F   # GSM 7-bit, language unspecified


class CbsError(ValueError):
    """A cell broadcast page that cannot be read."""


class _SerialNumber:
    """The fields of a CBS serial number (TS 23.041 9.4.1.2.1) a page and a whole message
    share: the message code tells messages apart, the update number a message's updates."""

    serial: int

    @property
    def message_code(self) -> int:
        return (self.serial >> 4) & 0x3FF

    @property
    def update_number(self) -> int:
        return self.serial & 0xF


@dataclass(frozen=True)
class Page(_SerialNumber):
    serial: int
    message_id: int
    dcs: int
    page: int
    pages: int
    content: bytes

    @property
    def emergency_alert(self) -> bool:
        """ETWS: the phone alerts its user (TS 23.041 9.4.1.2.1, message code bit 9)."""
        return bool(self.serial & 0x2000)

    @property
    def popup(self) -> bool:
        return bool(self.serial & 0x1000)


@dataclass(frozen=True)
class Broadcast(_SerialNumber):
    """A whole cell broadcast message (every page, or what came of it: *complete*)."""
    message_id: int
    serial: int
    dcs: int
    text: str
    pages: int
    language: str | None = None
    complete: bool = True

    @property
    def warning_type(self) -> str | None:
        """'earthquake', 'tsunami', … for an ETWS message identifier, else None."""
        return ETWS_TYPES.get(self.message_id)


def decode_page(page_hex: str) -> Page:
    """One page as the modem gave it (hex); CbsError when it is not a CBS page."""
    try:
        raw = bytes.fromhex(page_hex.strip())
    except ValueError:
        raise CbsError(f"not hexadecimal: {page_hex[:20]!r}") from None
    if len(raw) < 7 or len(raw) > PAGE_OCTETS:
        raise CbsError(f"a CBS page is {PAGE_OCTETS} octets, got {len(raw)}")
    param = raw[5]
    page, pages = (param >> 4, param & 0xF) if param else (1, 1)
    if not 1 <= page <= pages:
        raise CbsError(f"page parameter {param:#04x}: page {page} of {pages}")
    return Page(serial=int.from_bytes(raw[0:2], "big"),
                message_id=int.from_bytes(raw[2:4], "big"), dcs=raw[4], page=page,
                pages=pages, content=raw[6:])


def alphabet(dcs: int) -> tuple[str, str | None]:
    """(alphabet, how a language is given first) for a CBS data coding scheme, TS 23.038 5:
    alphabet 'gsm7', '8bit' or 'ucs2'; the prefix None, 'gsm7' (two characters and a CR)
    or 'packed' (two GSM 7-bit characters packed into two octets before UCS2)."""
    group = dcs >> 4
    if dcs == 0x10:
        return "gsm7", "gsm7"
    if dcs == 0x11:
        return "ucs2", "packed"
    if group & 0xC == 0x4 or group == 0x9:          # 01xx and 1001: general data coding
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x3], None
    if group == 0xF:
        return ("8bit" if dcs & 0x4 else "gsm7"), None
    return "gsm7", None   # 0000, 0010, 0011 and the reserved groups: the default alphabet


def _gsm7(content: bytes, count: int = GSM7_PER_PAGE) -> str:
    try:
        return gsm.decodeGsm7(gsm.unpackSeptets(bytearray(content), count))
    except (IndexError, KeyError, StopIteration, ValueError) as exc:
        raise CbsError(f"bad GSM 7-bit content: {exc}") from None


def page_text(page: Page) -> tuple[str, str | None]:
    """(the page's text without its padding, the language it names when it names one)."""
    kind, prefix = alphabet(page.dcs)
    content, language = page.content, None
    if prefix == "packed" and page.page == 1:
        language, content = _gsm7(content[:2], 2), content[2:]
    if kind == "ucs2":
        if len(content) % 2:
            content = content[:-1]
        text = content.decode("utf-16-be", errors="replace")
    elif kind == "8bit":
        text = content.decode("latin-1")
    else:
        text = _gsm7(content)
        if prefix == "gsm7" and page.page == 1:
            language, text = text[:2], text[3:]
    # The padding is CR (TS 23.041 9.4.1.2.4); a line feed at a page's end is the text's.
    return text.rstrip("\r\x00"), language


class Reassembler:
    """Joins the pages of each message (by serial number and message id)."""

    def __init__(self) -> None:
        self._partial: dict[tuple[int, int], dict] = {}

    def add(self, page: Page, now: float) -> Broadcast | None:
        """The whole message once its last missing page came, else None."""
        key = (page.serial, page.message_id)
        entry = self._partial.setdefault(key, {"pages": {}, "total": page.pages, "at": now,
                                               "dcs": page.dcs})
        entry["pages"][page.page] = page
        if len(entry["pages"]) < entry["total"]:
            return None
        del self._partial[key]
        return _join(entry, complete=True)

    def stale(self, now: float, max_age: float) -> list[Broadcast]:
        """Messages whose missing pages did not come within *max_age* seconds, with what
        did come: a warning is worth showing even when one page was lost."""
        out = []
        for key in [k for k, e in self._partial.items() if now - e["at"] >= max_age]:
            out.append(_join(self._partial.pop(key), complete=False))
        return out


def _join(entry: dict, *, complete: bool) -> Broadcast:
    pages = [entry["pages"][n] for n in sorted(entry["pages"])]
    texts = [page_text(p) for p in pages]
    language = next((lang for _, lang in texts if lang), None)
    first = pages[0]
    return Broadcast(message_id=first.message_id, serial=first.serial, dcs=entry["dcs"],
                     text="".join(t for t, _ in texts).rstrip("\r\n"), pages=entry["total"],
                     language=language, complete=complete)


def serial_number(message_code: int, update_number: int = 0, *, geographical_scope: int = 3,
                  alert: bool = True, popup: bool = True) -> int:
    """A serial number as a network sets it for an ETWS warning (alert and popup bits set)."""
    code = message_code & 0x3FF
    if alert:
        code |= 0x200
    if popup:
        code |= 0x100
    return (geographical_scope & 0x3) << 14 | code << 4 | (update_number & 0xF)


def _ucs2_pages(text: str) -> list[bytes]:
    """UCS2 content of each page, never splitting a surrogate pair, padded with CR."""
    pages: list[bytes] = []
    current = b""
    for ch in text:
        encoded = ch.encode("utf-16-be")
        if len(current) + len(encoded) > CONTENT_OCTETS:
            pages.append(current)
            current = b""
        current += encoded
    if current or not pages:
        pages.append(current)
    return [p + "\r".encode("utf-16-be") * ((CONTENT_OCTETS - len(p)) // 2)
            + b"\x00" * ((CONTENT_OCTETS - len(p)) % 2) for p in pages]


def _gsm7_pages(text: str) -> list[bytes]:
    septets = gsm.encodeGsm7(text)
    chunks = [septets[i:i + GSM7_PER_PAGE] for i in range(0, len(septets), GSM7_PER_PAGE)]
    out = []
    for chunk in chunks or [bytearray()]:
        padded = bytearray(chunk) + bytearray([0x0D] * (GSM7_PER_PAGE - len(chunk)))
        out.append(bytes(gsm.packSeptets(padded))[:CONTENT_OCTETS].ljust(CONTENT_OCTETS,
                                                                          b"\x00"))
    return out


def encode_pages(message_id: int, text: str, *, serial: int | None = None,
                 dcs: int = DCS_UCS2) -> list[str]:
    """The pages a network sends for *text* (hex, one per page): UCS2 unless *dcs* says
    GSM 7-bit. For the simulated modem and the tests."""
    kind, _prefix = alphabet(dcs)
    if kind == "ucs2":
        contents = _ucs2_pages(text)
    elif kind == "gsm7":
        contents = _gsm7_pages(text)
    else:
        raise CbsError("only GSM 7-bit and UCS2 pages are encoded")
    if len(contents) > MAX_PAGES:
        raise CbsError(f"at most {MAX_PAGES} pages, this text needs {len(contents)}")
    serial = serial_number(1) if serial is None else serial
    total = len(contents)
    return [(serial.to_bytes(2, "big") + message_id.to_bytes(2, "big") + bytes([dcs])
             + bytes([(n << 4) | total]) + content).hex().upper()
            for n, content in enumerate(contents, start=1)]
