"""The roster CSV file format: encodings, headers, cells — no database, no domain rules.

What clinics actually have is a spreadsheet saved by Excel: in Japan that is CP932
(Shift_JIS with Microsoft's extensions) and CRLF, or "CSV UTF-8" with a BOM. Headers are
Japanese or English, with the synonyms people use. This module turns such bytes into
records of named cells, or a `CsvFileError` that says what is wrong and where (row numbers
count the header as row 1, as a spreadsheet shows them). appliance.contacts checks the
cells' meaning. The appointments file of the reminders is read the same way with its own
`Layout` (appliance.reminders_csv).
"""
from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000

# field -> header synonyms, compared after _header_key(). For the phone, the first tier
# (clearly a mobile) wins over the second (any phone) when a roster has both columns.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "patient_id": ("患者id", "id", "patient_id", "patientid", "患者番号", "カルテ番号"),
    "name": ("氏名", "名前", "name", "患者名", "お名前", "患者氏名"),
    "kana": ("フリガナ", "ふりがな", "カナ", "かな", "kana", "furigana", "よみがな", "ヨミガナ"),
    "phone": ("携帯電話", "携帯", "携帯番号", "携帯電話番号", "mobile", "mobile_phone",
              "電話番号", "電話", "phone", "tel"),
    "facility": ("施設", "facility", "施設名", "所属"),
    "days": ("透析曜日", "曜日", "days"),
    "shift": ("時間帯", "shift", "time", "クール"),
    "note": ("備考", "note", "notes", "メモ", "memo"),
    "groups": ("グループ", "groups", "group"),
    # The contact asked not to be rung when silent after an emergency (appliance.ringing).
    "no_ring": ("自動電話なし", "電話しない", "呼び出しなし", "着信不要", "no_ring", "do_not_ring"),
}
PHONE_SECONDARY = ("電話番号", "電話", "phone", "tel")
REQUIRED = ("name", "phone")
# The header each field gets in an export (and the one named in messages).
HEADERS_JA = {"patient_id": "患者ID", "name": "氏名", "kana": "フリガナ", "phone": "携帯電話",
              "facility": "施設", "days": "透析曜日", "shift": "時間帯", "groups": "グループ",
              "note": "備考", "no_ring": "自動電話なし"}


class CsvFileError(ValueError):
    """The file as a whole cannot be read; `.row` is set when one row is to blame."""

    def __init__(self, message_ja: str, message_en: str, *, row: int | None = None):
        self.row = row
        self.message_ja = message_ja
        self.message_en = message_en
        where = f"{row}行目: " if row else ""
        where_en = f"row {row}: " if row else ""
        super().__init__(f"{where}{message_ja} ({where_en}{message_en})")


@dataclass(frozen=True)
class Record:
    row: int                        # as a spreadsheet numbers it; the header is row 1
    cells: dict[str, str]           # field -> cell text, only for mapped columns
    width: int                      # how many cells the row has (see Sheet.width)


class PreviewCounts:
    """What an import's preview says of its rows (each with `status` and `problems`)."""
    rows: tuple

    @property
    def ok_count(self) -> int:
        return sum(r.status == "ok" for r in self.rows)

    @property
    def error_count(self) -> int:
        return sum(r.status == "error" for r in self.rows)

    @property
    def problems(self) -> list:
        return [p for r in self.rows for p in r.problems]


@dataclass(frozen=True)
class Sheet:
    encoding: str                   # 'utf-8-sig', 'utf-8' or 'cp932'
    columns: dict[str, str]         # field -> the header as written in the file
    ignored: tuple[str, ...]        # headers we do not use
    records: tuple[Record, ...]     # non-blank data rows
    width: int                      # how many columns the header has


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, else CP932; anything else refused.

    A file is read in one encoding only. Lines pasted together from files saved apart can
    mix them: read as CP932, the UTF-8 lines would become mojibake that then overwrites real
    names, so a file with both UTF-8 lines and lines that are not UTF-8 is refused, naming
    the lines.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        raise _utf16()
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _mixed(data) or _not_text(data, exc) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if mixed := _mixed(data):
        raise mixed
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        if _decodes_as_utf16(data):
            raise _utf16() from None
        raise _not_text(data, exc) from None


def _mixed(data: bytes) -> CsvFileError | None:
    """The refusal for a file whose lines are in UTF-8 and in another encoding, or None."""
    utf8, other = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            other.append(number)
        else:
            utf8.append(number)
    if not (utf8 and other):
        return None
    shown = "、".join(map(str, other[:10])) + ("…" if len(other) > 10 else "")
    shown_utf8 = "、".join(map(str, utf8[:5])) + ("…" if len(utf8) > 5 else "")
    return CsvFileError(
        f"文字コードが混ざっています：{shown}行目は Shift_JIS など、{shown_utf8}行目は UTF-8 です。"
        "すべての行を同じ形式（「CSV UTF-8」など）で保存し直してください",
        f"mixed encodings: line(s) {shown.replace('、', ', ')} are not UTF-8 (Shift_JIS?) but "
        f"line(s) {shown_utf8.replace('、', ', ')} are; save the whole file in one encoding",
        row=other[0])


def _looks_utf16(data: bytes) -> bool:
    # UTF-16 without a BOM: ASCII letters alternate with NUL bytes.
    head = data[:200]
    return len(head) >= 4 and head.count(0) >= len(head) // 3


def _decodes_as_utf16(data: bytes) -> bool:
    # Japanese text in UTF-16 has no NUL bytes; it is recognised by decoding cleanly into
    # something with commas and line breaks.
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if "," in text and "\n" in text:
            return True
    return False


def _utf16() -> CsvFileError:
    return CsvFileError("UTF-16のファイルは読めません。「CSV UTF-8」か「CSV」で保存し直してください",
                        "the file is UTF-16 (Excel's \"Unicode text\"); save it as "
                        "\"CSV UTF-8\" or \"CSV\"")


def _not_text(data: bytes, exc: UnicodeDecodeError) -> CsvFileError:
    row = data[:exc.start].count(b"\n") + 1
    return CsvFileError("文字コードが UTF-8 でも Shift_JIS (CP932) でもありません",
                        "the file is neither UTF-8 nor Shift_JIS/CP932", row=row)


def _header_key(header: str) -> str:
    key = unicodedata.normalize("NFKC", header).strip().lower()
    return key.replace(" ", "").replace("　", "")


@dataclass(frozen=True)
class Layout:
    """The columns a kind of file has: header synonyms per field, the fields it must have,
    the header each is named by in messages, and the secondary (any phone) headers that only
    count when no mobile column is there."""
    synonyms: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    headers: dict[str, str]
    phone_secondary: tuple[str, ...] = ()


ROSTER = Layout(SYNONYMS, REQUIRED, HEADERS_JA, PHONE_SECONDARY)


def map_headers(header: list[str], layout: Layout | None = None
                ) -> tuple[dict[str, int], dict[str, str], tuple[str, ...]]:
    """(field -> column index, field -> header text, ignored headers) or CsvFileError."""
    layout = layout or ROSTER
    lookup = {_header_key(s): f for f, synonyms in layout.synonyms.items() for s in synonyms}
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    secondary_phone: list[tuple[int, str]] = []
    ignored: list[str] = []
    for i, text in enumerate(header):
        key = _header_key(text)
        if not key:
            continue
        field = lookup.get(key)
        if field is None:
            ignored.append(text.strip())
            continue
        if field == "phone" and key in map(_header_key, layout.phone_secondary):
            secondary_phone.append((i, text.strip()))
            continue
        if field in index:
            raise CsvFileError(f"「{written[field]}」と「{text.strip()}」の列が重なっています。"
                               "どちらかの見出しを変えてください",
                               f"columns {written[field]!r} and {text.strip()!r} both mean "
                               f"{field}; rename or remove one", row=1)
        index[field], written[field] = i, text.strip()
    _choose_phone(index, written, secondary_phone, ignored)
    for field in layout.required:
        if field not in index:
            names = "・".join(s for s in layout.synonyms[field][:3])
            raise CsvFileError(f"「{layout.headers[field]}」の列がありません（見出しの例: {names}）",
                               f"missing column: {layout.headers[field]} ({field}); headers "
                               f"found: {', '.join(h.strip() for h in header if h.strip())}",
                               row=1)
    return index, written, tuple(ignored)


def _choose_phone(index, written, secondary, ignored) -> None:
    if "phone" in index:
        ignored.extend(text for _, text in secondary)
    elif len(secondary) == 1:
        index["phone"], written["phone"] = secondary[0]
    elif len(secondary) > 1:
        names = " / ".join(text for _, text in secondary)
        raise CsvFileError(f"電話番号の列が複数あります（{names}）。携帯電話の列を「携帯電話」にしてください",
                           f"several phone columns ({names}); name the mobile one "
                           "\"携帯電話\" or \"mobile\"", row=1)


def read(data: bytes, layout: Layout | None = None) -> Sheet:
    """Parse a roster file (or another *layout*'s); refuses size, encoding, header and
    CSV-syntax problems."""
    if not data or not data.strip(b"\r\n\t \xef\xbb\xbf"):
        raise CsvFileError("ファイルが空です", "the file is empty")
    if len(data) > MAX_BYTES:
        raise CsvFileError(f"ファイルが大きすぎます（{MAX_BYTES // 1024 // 1024}MBまで）",
                           f"the file is larger than {MAX_BYTES // 1024 // 1024} MB")
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    try:
        header = next(reader)
        row = 1
        if any("\x00" in cell for cell in header):
            raise CsvFileError("NUL文字が含まれています", "the header contains NUL bytes; "
                               "the file is damaged or not a CSV", row=1)
        index, written, ignored = map_headers(header, layout)
        records = []
        for cells in reader:
            row += 1
            if row - 1 > MAX_ROWS:
                raise CsvFileError(f"行が多すぎます（{MAX_ROWS}行まで）",
                                   f"more than {MAX_ROWS} rows", row=row)
            record = _record(row, cells, index, len(header))
            if record is not None:
                records.append(record)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            limit = csv.field_size_limit()
            raise CsvFileError(f"セルが長すぎます（1つのセルは{limit}文字まで）",
                               f"a cell is longer than {limit} characters",
                               row=row + 1) from None
        raise CsvFileError("CSVとして読めません（引用符 \" の閉じ忘れなど）",
                           f"not valid CSV ({exc}); an unclosed quote \" is the usual cause",
                           row=row + 1) from None
    if not records:
        raise CsvFileError("データの行がありません（見出しだけです）",
                           "no data rows, only the header")
    return Sheet(encoding=encoding, columns=written, ignored=ignored, records=tuple(records),
                 width=len(header))


def _record(row: int, cells: list[str], index: dict[str, int], width: int) -> Record | None:
    if any("\x00" in cell for cell in cells):
        raise CsvFileError("NUL文字が含まれています。表計算ソフトで保存し直してください",
                           "the row contains NUL bytes; the file is damaged or not a CSV",
                           row=row)
    if not any(cell.strip() for cell in cells):
        return None  # a blank line or a row of empty cells: Excel leaves these
    values = {f: undefuse(cells[i] if i < len(cells) else "") for f, i in index.items()}
    return Record(row=row, cells=values, width=len(cells))


# A cell starting with one of these is a formula to Excel: a name like "=HYPERLINK(…)" would
# run when the exported roster is opened. Written with a leading apostrophe (Excel's own
# "this is text" mark, OWASP's advice) and read back without it.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def undefuse(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def write(header: list[str], rows: list[list[str]], encoding: str) -> bytes:
    """CSV bytes as Excel in Japan opens them: CRLF; UTF-8 gets a BOM.

    Cells must already be encodable (see appliance.contacts for the CP932 check).
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[defuse(cell) for cell in row] for row in rows])
    codec = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
    return out.getvalue().encode(codec)
