"""Contacts and groups: the people we may text, checked by one set of rules.

Every way in — the web form, the CSV import, the seed — goes through the same checks
(`check_fields`), and every write is one BEGIN IMMEDIATE transaction with its audit row.

CSV import (see `import_contacts`) is all-or-nothing and an *upsert*:
- A row matches an existing contact by patient ID (患者ID) when it has one, else by number.
  Matched contacts are updated (and reactivated); others are created. Contacts absent from
  the file are left alone: an import never deletes anyone.
- For a matched contact, each column present in the file is the truth: an empty 備考 cell
  clears the note. Columns the file does not have keep their stored values. An empty
  患者ID cell never clears a stored patient ID.
- Groups: the facility (施設) becomes a group of kind 'facility', the dialysis days and time
  (透析曜日 + 時間帯) a 'shift' group such as 「月水金 午前」, and the グループ column names
  any other groups (separated by ; ・ or 、). For a matched contact the file replaces its
  memberships of the kinds whose columns it has (facility, shift, custom); the test group
  is never removed by an import.
- A number that belongs to a different contact than the row's patient ID is an error, as
  are two rows with the same number or patient ID, so an import never moves a number
  silently from one patient to another.
"""
from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import sqlite_utils

from . import audit, phone
from .db import now, write
from .roster_csv import CsvFileError

if TYPE_CHECKING:
    from .contacts_csv import (
        ImportPreview, ImportResult, RowResult, export_contacts, import_contacts, preview)

LIMITS = {"patient_id": 32, "name": 100, "kana": 100, "facility": 50, "note": 500}
GROUP_NAME_MAX = 50
GROUP_KINDS = ("facility", "shift", "test", "custom")
GROUP_SEPARATORS = re.compile(r"[;；、・]")
DAYS = "月火水木金土日"
# English day names a roster may use ("Mon/Wed/Fri", "tue thu sat"), mapped to the same groups.
_ENGLISH_DAYS = {"monday": "月", "mon": "月", "tuesday": "火", "tue": "火", "tues": "火",
                 "wednesday": "水", "wed": "水", "thursday": "木", "thu": "木", "thur": "木",
                 "thurs": "木", "friday": "金", "fri": "金", "saturday": "土", "sat": "土",
                 "sunday": "日", "sun": "日"}
_ENGLISH_DAY = re.compile(r"[A-Za-z]+")
_ENGLISH_SHIFTS = {"am": "午前", "morning": "午前", "pm": "午後", "afternoon": "午後",
                   "evening": "夜間", "night": "夜間"}
_DAY_NOISE = re.compile(r"[\s・,、/／]|曜日|曜")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Invisible characters that only cause harm in a name: a BOM left mid-file by pasting two
# "CSV UTF-8" files together, zero-width spaces, and the bidirectional controls that make
# "U+202E" text display reversed (a name that reads differently from what it is).
_INVISIBLE = re.compile("[\ufeff\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c]")
_CONTROL_IN_NOTE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # notes may have line breaks
LABELS = {"patient_id": ("患者ID", "patient ID"), "name": ("氏名", "name"),
          "kana": ("フリガナ", "kana"), "phone": ("携帯電話", "mobile number"),
          "facility": ("施設", "facility"), "note": ("備考", "note"),
          "groups": ("グループ", "groups"), "days": ("透析曜日", "days"),
          "shift": ("時間帯", "shift"), "active": ("有効", "active"),
          "no_ring": ("自動電話なし", "no automatic call")}


# -- errors -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field, in Japanese and English; `code` for programs."""
    field: str
    code: str
    ja: str
    en: str
    row: int | None = None

    def message(self, language: str = "ja") -> str:
        text = self.en if language == "en" else self.ja
        if self.row is None:
            return text
        return f"row {self.row}: {text}" if language == "en" else f"{self.row}行目: {text}"

    def __str__(self) -> str:
        where = f"{self.row}行目 (row {self.row}): " if self.row is not None else ""
        return f"{where}{self.ja} ({self.en})"


class ContactsError(Exception):
    """The root of this module's errors."""


class ContactValidationError(ContactsError, ValueError):
    """A contact or group refused; `.problems` holds every problem, `.field` the first's."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        self.field = self.problems[0].field
        super().__init__("; ".join(str(p) for p in self.problems))

    def by_field(self, language: str = "ja") -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.problems:
            out.setdefault(p.field, p.message(language))
        return out


class NotFound(ContactsError, LookupError):
    pass


class ContactImportError(ContactsError):
    """Nothing was imported. `.problems` lists every problem with its row (None: the whole
    file); `.preview` is the per-row preview when the file itself could be read."""

    def __init__(self, problems: list[Problem], preview: ImportPreview | None = None):
        self.problems = list(problems)
        self.preview = preview
        head = (f"{len(self.problems)}件の問題があるため、何も取り込んでいません "
                f"(nothing imported: {len(self.problems)} problem(s))")
        super().__init__(head + "\n" + "\n".join(str(p) for p in self.problems))


class ExportError(ContactsError):
    """The export cannot be written as asked; `.problems` names each contact and field."""

    def __init__(self, message: str, problems: list[Problem]):
        self.problems = problems
        super().__init__(message + "\n" + "\n".join(str(p) for p in problems))


def _problem(field: str, code: str, ja: str, en: str) -> Problem:
    return Problem(field=field, code=code, ja=ja, en=en)


# -- the domain ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    id: int
    patient_id: str | None
    name: str
    kana: str
    phone: str                      # E.164
    facility: str
    note: str
    active: bool
    created_at: float
    updated_at: float
    groups: tuple[str, ...] = ()    # group names, sorted
    no_ring: bool = False           # never rung when silent (appliance.ringing)

    @property
    def display_phone(self) -> str:
        return phone.display_number(self.phone)


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    kind: str
    note: str
    member_count: int = 0           # active members


def _check_text(fields: dict[str, Any], key: str, problems: list[Problem], *,
                nfkc: bool = False, control: re.Pattern = _CONTROL) -> None:
    value = fields.get(key)
    if value is None:
        return
    value = _INVISIBLE.sub("", str(value))
    if nfkc:
        value = unicodedata.normalize("NFKC", value)
    value = value.strip()
    ja, en = LABELS[key]
    if control.search(value):
        problems.append(_problem(key, "control_chars", f"{ja}に制御文字や改行が含まれています",
                                 f"{en} contains a line break or control character"))
    elif len(value) > LIMITS[key]:
        problems.append(_problem(key, "too_long", f"{ja}は{LIMITS[key]}文字までです",
                                 f"{en} is longer than {LIMITS[key]} characters"))
    fields[key] = value


def check_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Clean and check the contact fields given (any of patient_id, name, kana, phone,
    facility, note); returns (cleaned fields, problems). The phone comes back as E.164."""
    fields = dict(fields)
    problems: list[Problem] = []
    if "name" in fields:
        if not str(fields["name"] or "").strip():
            problems.append(_problem("name", "name_missing", "氏名が空です", "name missing"))
        _check_text(fields, "name", problems)
    if "phone" in fields:
        raw = fields["phone"]
        if raw is None or not str(raw).strip():
            problems.append(_problem("phone", "phone_missing", "携帯電話番号が空です",
                                     "number missing"))
        else:
            try:
                fields["phone"] = phone.normalise_mobile(str(raw))
            except phone.PhoneError as exc:
                problems.append(_problem("phone", exc.reason, exc.message_ja, exc.message_en))
    _check_text(fields, "kana", problems, nfkc=True)  # ｶﾅ → カナ
    _check_text(fields, "facility", problems)
    _check_text(fields, "note", problems, control=_CONTROL_IN_NOTE)
    if "patient_id" in fields:
        if fields["patient_id"] is not None:
            _check_text(fields, "patient_id", problems, nfkc=True)
        fields["patient_id"] = fields["patient_id"] or None
    return fields, problems


def check_group_name(name: str, *, kind: str = "custom") -> str:
    name = unicodedata.normalize("NFC", str(name or "")).strip()
    problems = []
    if not name:
        problems.append(_problem("name", "group_name_missing", "グループ名が空です",
                                 "the group name is empty"))
    elif len(name) > GROUP_NAME_MAX:
        problems.append(_problem("name", "too_long", f"グループ名は{GROUP_NAME_MAX}文字までです",
                                 f"a group name is at most {GROUP_NAME_MAX} characters"))
    elif _CONTROL.search(name):
        problems.append(_problem("name", "control_chars", "グループ名に制御文字があります",
                                 "the group name contains a control character"))
    elif kind in ("custom", "test") and GROUP_SEPARATORS.search(name):
        # These separate group names in the CSV グループ column.
        problems.append(_problem("name", "separator", "グループ名に ; ・ 、 は使えません",
                                 "a group name cannot contain ; ・ or 、"))
    if kind not in GROUP_KINDS:
        problems.append(_problem("kind", "bad_kind", "グループの種類が不正です",
                                 f"kind must be one of {', '.join(GROUP_KINDS)}"))
    if problems:
        raise ContactValidationError(problems)
    return name


def shift_group_name(days: str | None, shift: str | None) -> str | None:
    """「月水金 午前」 from the days (月・水・金, 金水月…) and the time of day, or None."""
    days = unicodedata.normalize("NFKC", days or "").strip()
    words = _ENGLISH_DAY.findall(days)
    if words and all(w.lower() in _ENGLISH_DAYS for w in words):
        days = "".join(_ENGLISH_DAYS[w.lower()] for w in words)
    compact = _DAY_NOISE.sub("", days)
    if compact and all(c in DAYS for c in compact):
        days = "".join(d for d in DAYS if d in compact)
    shift = unicodedata.normalize("NFKC", shift or "").strip()
    shift = _ENGLISH_SHIFTS.get(shift.lower(), shift)
    return " ".join(part for part in (days, shift) if part) or None


def split_shift_group(name: str) -> tuple[str, str]:
    """The (days, time) columns an export writes for a shift group's name."""
    if " " in name:
        days, shift = name.rsplit(" ", 1)
        return days, shift
    if all(c in DAYS for c in name):
        return name, ""
    return "", name


def split_group_names(text: str) -> list[str]:
    names: list[str] = []
    for part in GROUP_SEPARATORS.split(unicodedata.normalize("NFC", text or "")):
        part = part.strip()
        if part and part not in names:
            names.append(part)
    return names


# -- reading ------------------------------------------------------------------------------

def _groups_by_contact(conn: sqlite3.Connection, ids: list[int] | None = None
                       ) -> dict[int, tuple[str, ...]]:
    rows = conn.execute("SELECT cg.contact_id, g.name FROM contact_groups cg "
                        "JOIN groups g ON g.id = cg.group_id ORDER BY g.name").fetchall()
    out: dict[int, list[str]] = {}
    wanted = set(ids) if ids is not None else None
    for r in rows:
        if wanted is None or r["contact_id"] in wanted:
            out.setdefault(r["contact_id"], []).append(r["name"])
    return {k: tuple(v) for k, v in out.items()}


def _contact(row: sqlite3.Row, groups: dict[int, tuple[str, ...]]) -> Contact:
    return Contact(id=row["id"], patient_id=row["patient_id"], name=row["name"],
                   kana=row["kana"], phone=row["phone"], facility=row["facility"],
                   note=row["note"], active=bool(row["active"]), created_at=row["created_at"],
                   updated_at=row["updated_at"], groups=groups.get(row["id"], ()),
                   no_ring=bool(row["no_ring"]) if "no_ring" in row.keys() else False)


def _conn(db: sqlite_utils.Database | sqlite3.Connection) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def get_contact(db, contact_id: int) -> Contact | None:
    conn = _conn(db)
    row = conn.execute("SELECT * FROM contacts WHERE id = ?", [contact_id]).fetchone()
    return _contact(row, _groups_by_contact(conn, [contact_id])) if row else None


def find_by_phone(db, text: str) -> Contact | None:
    """The contact with this number, in any form people type; None when none or invalid."""
    try:
        e164 = phone.normalise_mobile(text)
    except phone.PhoneError:
        return None
    conn = _conn(db)
    row = conn.execute("SELECT * FROM contacts WHERE phone = ?", [e164]).fetchone()
    return _contact(row, _groups_by_contact(conn, [row["id"]])) if row else None


# Variant forms (異体字) of kanji common in family names, folded to the everyday form for
# search only (names are stored as written): 「高橋」 finds 「髙橋」, 「山崎」 finds 「山﨑」.
# NFKC does not fold these (髙 is a separate character; 﨑 is one of the compatibility
# ideographs without a decomposition). A short list on purpose: the published variant
# tables also join different characters (崎・埼・碕, 斎・斉) that are different names.
KANJI_VARIANTS = str.maketrans({
    "髙": "高", "﨑": "崎", "嵜": "崎", "邊": "辺", "邉": "辺", "澤": "沢", "濱": "浜",
    "齋": "斎", "齊": "斉", "廣": "広", "櫻": "桜", "國": "国", "眞": "真", "德": "徳",
    "瀨": "瀬", "冨": "富", "槇": "槙", "藪": "薮", "龍": "竜", "惠": "恵", "實": "実",
    "淺": "浅", "條": "条", "彌": "弥", "嶋": "島", "嶌": "島", "曾": "曽", "靜": "静",
    "增": "増", "埜": "野", "兒": "児", "黑": "黒", "戶": "戸", "舘": "館", "萬": "万",
    "榮": "栄", "緖": "緒", "﨔": "欅", "𠮷": "吉", "瀧": "滝", "驒": "騨", "鷗": "鴎",
    "禮": "礼", "壽": "寿", "濵": "浜",
})


def find_by_patient_id(db, patient_id: str) -> Contact | None:
    """The contact with the clinic's patient ID (as the CSV import matches it), or None."""
    value = unicodedata.normalize("NFKC", patient_id or "").strip()
    if not value:
        return None
    conn = _conn(db)
    row = conn.execute("SELECT * FROM contacts WHERE patient_id = ?", [value]).fetchone()
    return _contact(row, _groups_by_contact(conn, [row["id"]])) if row else None


def patient_ids(db, contact_ids: Iterable[int]) -> dict[int, str | None]:
    """contact id → patient ID, for lists that show who a row is in the clinic's terms."""
    ids = sorted({int(i) for i in contact_ids if i is not None})
    if not ids:
        return {}
    return {r[0]: r[1] for r in _conn(db).execute(
        f"SELECT id, patient_id FROM contacts WHERE id IN ({','.join('?' * len(ids))})", ids)}


def _fold(text: str) -> str:
    """For search: NFKC, lower case, no spaces, hiragana as katakana, variant kanji as the
    everyday ones."""
    text = unicodedata.normalize("NFKC", text or "").lower().translate(KANJI_VARIANTS)
    text = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text)
    return re.sub(r"\s+", "", text)


SORT_KEYS = {"kana": "c.kana, c.name, c.id", "name": "c.name, c.kana, c.id",
             "phone": "c.phone, c.id", "facility": "c.facility, c.kana, c.id",
             "patient_id": "c.patient_id, c.kana, c.id"}


def list_contacts(db, query: str | None = None, *, group_id: int | None = None,
                  include_inactive: bool = False, limit: int | None = None,
                  offset: int = 0, sort: str = "kana", descending: bool = False
                  ) -> list[Contact]:
    """Contacts by kana then name (or by *sort*, one of SORT_KEYS); *query* matches name,
    kana (ひらがな or カタカナ), patient ID or number (090-1000…, +8190…, any run of digits)."""
    conn = _conn(db)
    sql, params = "SELECT c.* FROM contacts c", []
    clauses = [] if include_inactive else ["c.active = 1"]
    if group_id is not None:
        sql += " JOIN contact_groups cg ON cg.contact_id = c.id AND cg.group_id = ?"
        params.append(group_id)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    order = SORT_KEYS.get(sort, SORT_KEYS["kana"])
    if descending:
        order = ", ".join(f"{column} DESC" for column in order.split(", "))
    rows = conn.execute(sql + " ORDER BY " + order, params).fetchall()
    if query and query.strip():
        rows = [r for r in rows if _matches(r, query)]
    rows = rows[offset:offset + limit] if limit is not None else rows[offset:]
    groups = _groups_by_contact(conn)
    return [_contact(r, groups) for r in rows]


def _matches(row: sqlite3.Row, query: str) -> bool:
    folded = _fold(query)
    if folded and any(folded in _fold(row[k] or "") for k in ("name", "kana", "patient_id")):
        return True
    digits = phone.search_digits(query)
    if digits is None or len(re.sub(r"\D", "", digits)) < 3:
        return False
    if digits.startswith("+"):
        return row["phone"].startswith(digits)
    return digits in row["phone"]


def count_contacts(db, *, include_inactive: bool = False) -> int:
    where = "" if include_inactive else " WHERE active = 1"
    return _conn(db).execute("SELECT count(*) FROM contacts" + where).fetchone()[0]


def _group(row: sqlite3.Row) -> Group:
    return Group(id=row["id"], name=row["name"], kind=row["kind"], note=row["note"],
                 member_count=row["member_count"])


_GROUP_SELECT = ("SELECT g.*, (SELECT count(*) FROM contact_groups cg JOIN contacts c "
                 "ON c.id = cg.contact_id WHERE cg.group_id = g.id AND c.active = 1) "
                 "AS member_count FROM groups g")


def list_groups(db, kind: str | None = None) -> list[Group]:
    """Groups with their active member counts: facilities, shifts, test, then custom."""
    sql, params = _GROUP_SELECT, []
    if kind is not None:
        sql += " WHERE g.kind = ?"
        params.append(kind)
    order = " ORDER BY CASE g.kind WHEN 'facility' THEN 0 WHEN 'shift' THEN 1 " \
            "WHEN 'test' THEN 2 ELSE 3 END, g.name"
    return [_group(r) for r in _conn(db).execute(sql + order, params).fetchall()]


def get_group(db, group_id: int) -> Group | None:
    row = _conn(db).execute(_GROUP_SELECT + " WHERE g.id = ?", [group_id]).fetchone()
    return _group(row) if row else None


def get_group_by_name(db, name: str) -> Group | None:
    row = _conn(db).execute(_GROUP_SELECT + " WHERE g.name = ?",
                            [unicodedata.normalize("NFC", name).strip()]).fetchone()
    return _group(row) if row else None


def group_members(db, group_ids: Iterable[int], *, include_inactive: bool = False
                  ) -> list[Contact]:
    """Everyone in any of the groups, each once (the recipients of a broadcast)."""
    ids = sorted(set(group_ids))
    if not ids:
        return []
    conn = _conn(db)
    marks = ",".join("?" * len(ids))
    active = "" if include_inactive else " AND c.active = 1"
    rows = conn.execute(
        f"SELECT DISTINCT c.* FROM contacts c JOIN contact_groups cg ON cg.contact_id = c.id "
        f"WHERE cg.group_id IN ({marks}){active} ORDER BY c.kana, c.name, c.id", ids).fetchall()
    groups = _groups_by_contact(conn)
    return [_contact(r, groups) for r in rows]


# -- writing: contacts --------------------------------------------------------------------

def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ContactValidationError(problems)


def _check_unique(conn: sqlite3.Connection, fields: dict[str, Any], except_id: int | None
                  ) -> list[Problem]:
    problems = []
    if fields.get("phone"):
        row = conn.execute("SELECT id, name FROM contacts WHERE phone = ?",
                           [fields["phone"]]).fetchone()
        if row and row["id"] != except_id:
            problems.append(_problem("phone", "phone_taken",
                                     f"この番号は既に「{row['name']}」さんに登録されています",
                                     f"this number already belongs to contact #{row['id']}"))
    if fields.get("patient_id"):
        row = conn.execute("SELECT id, name FROM contacts WHERE patient_id = ?",
                           [fields["patient_id"]]).fetchone()
        if row and row["id"] != except_id:
            problems.append(_problem("patient_id", "patient_id_taken",
                                     f"この患者IDは既に「{row['name']}」さんに使われています",
                                     f"this patient ID already belongs to contact #{row['id']}"))
    return problems


def _ensure_group(conn: sqlite3.Connection, name: str, kind: str) -> int:
    row = conn.execute("SELECT id FROM groups WHERE name = ?", [name]).fetchone()
    if row:
        return row["id"]
    return conn.execute("INSERT INTO groups (name, kind) VALUES (?, ?)", [name, kind]).lastrowid


def _move_facility(conn: sqlite3.Connection, contact_id: int, old: str, new: str) -> None:
    """Keep the facility group membership in step with the contact's facility field."""
    if old:
        conn.execute("DELETE FROM contact_groups WHERE contact_id = ? AND group_id IN "
                     "(SELECT id FROM groups WHERE name = ? AND kind = 'facility')",
                     [contact_id, old])
    if new:
        group_id = _ensure_group(conn, new, "facility")
        conn.execute("INSERT OR IGNORE INTO contact_groups (contact_id, group_id) VALUES (?, ?)",
                     [contact_id, group_id])


def _check_group_ids(conn: sqlite3.Connection, group_ids: Iterable[int]) -> list[int]:
    ids = sorted(set(int(g) for g in group_ids))
    if ids:
        marks = ",".join("?" * len(ids))
        found = {r[0] for r in conn.execute(f"SELECT id FROM groups WHERE id IN ({marks})", ids)}
        missing = [g for g in ids if g not in found]
        if missing:
            raise ContactValidationError([_problem("groups", "no_such_group",
                                                   "存在しないグループが指定されました",
                                                   f"no such group: {missing}")])
    return ids


def add_contact(db: sqlite_utils.Database, *, name: str, phone: str, actor: str,
                kana: str = "", patient_id: str | None = None, facility: str = "",
                note: str = "", group_ids: Iterable[int] = (),
                remote_addr: str | None = None, active: bool = True) -> Contact:
    """Create a contact (and its facility group when new); ContactValidationError lists
    every problem by field."""
    fields, problems = check_fields({"name": name, "phone": phone, "kana": kana,
                                     "patient_id": patient_id, "facility": facility,
                                     "note": note})
    _raise_if(problems)
    with write(db) as conn:
        _raise_if(_check_unique(conn, fields, None))
        ids = _check_group_ids(conn, group_ids)
        at = now()
        contact_id = conn.execute(
            "INSERT INTO contacts (patient_id, name, kana, phone, facility, note, active, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [fields["patient_id"], fields["name"], fields["kana"], fields["phone"],
             fields["facility"], fields["note"], int(bool(active)), at, at]).lastrowid
        _move_facility(conn, contact_id, "", fields["facility"])
        conn.executemany("INSERT OR IGNORE INTO contact_groups (contact_id, group_id) "
                         "VALUES (?, ?)", [(contact_id, g) for g in ids])
        audit.record(conn, actor, "contact_add", remote_addr, contact_id=contact_id)
    return get_contact(db, contact_id)


EDITABLE = ("patient_id", "name", "kana", "phone", "facility", "note", "active", "no_ring")


def update_contact(db: sqlite_utils.Database, contact_id: int, *, actor: str,
                   remote_addr: str | None = None, **changes: Any) -> Contact:
    """Change some of: patient_id, name, kana, phone, facility, note, active, no_ring (the
    contact asked not to be rung when silent: appliance.ringing)."""
    with write(db) as conn:
        _update_contact(conn, contact_id, actor, remote_addr, changes)
    return get_contact(db, contact_id)


def edit_contact(db: sqlite_utils.Database, contact_id: int, *, group_ids: Iterable[int],
                 actor: str, remote_addr: str | None = None, **changes: Any) -> Contact:
    """The edit form's save: fields and groups in one transaction (all or nothing).

    Facility groups follow the facility field, so any in *group_ids* are ignored: a form
    that still shows the old facility ticked must not undo a move to another facility.
    """
    with write(db) as conn:
        _update_contact(conn, contact_id, actor, remote_addr, changes)
        _set_groups(conn, contact_id, group_ids, actor, remote_addr, keep_facility=True)
    return get_contact(db, contact_id)


def _update_contact(conn: sqlite3.Connection, contact_id: int, actor: str,
                    remote_addr: str | None, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"update_contact() cannot change {sorted(unknown)}")
    changes = dict(changes)
    active = changes.pop("active", None)
    no_ring = changes.pop("no_ring", None)
    fields, problems = check_fields(changes)
    _raise_if(problems)
    current = conn.execute("SELECT * FROM contacts WHERE id = ?", [contact_id]).fetchone()
    if current is None:
        raise NotFound(f"no contact with id {contact_id}")
    _raise_if(_check_unique(conn, fields, contact_id))
    if active is not None:
        fields["active"] = 1 if active else 0
    if no_ring is not None:
        fields["no_ring"] = 1 if no_ring else 0
    changed = sorted(k for k, v in fields.items() if current[k] != v)
    if changed:
        sets = ", ".join(f"{k} = ?" for k in changed)
        conn.execute(f"UPDATE contacts SET {sets}, updated_at = ? WHERE id = ?",
                     [*(fields[k] for k in changed), now(), contact_id])
        if "facility" in changed:
            _move_facility(conn, contact_id, current["facility"], fields["facility"])
        action = "contact_update"
        if changed == ["active"]:
            action = "contact_reactivate" if active else "contact_deactivate"
        audit.record(conn, actor, action, remote_addr, contact_id=contact_id,
                     fields=changed, old={k: current[k] for k in changed},
                     new={k: fields[k] for k in changed})


def deactivate_contact(db: sqlite_utils.Database, contact_id: int, *, actor: str,
                       remote_addr: str | None = None) -> Contact:
    """Stop sending to a contact without losing their history (broadcasts refer to them)."""
    return update_contact(db, contact_id, actor=actor, remote_addr=remote_addr, active=False)


# -- writing: groups ----------------------------------------------------------------------

def create_group(db: sqlite_utils.Database, name: str, *, actor: str, kind: str = "custom",
                 note: str = "", remote_addr: str | None = None) -> Group:
    name = check_group_name(name, kind=kind)
    with write(db) as conn:
        if conn.execute("SELECT 1 FROM groups WHERE name = ?", [name]).fetchone():
            raise ContactValidationError([_problem("name", "group_exists",
                                                   f"「{name}」というグループは既にあります",
                                                   "a group with this name exists")])
        group_id = conn.execute("INSERT INTO groups (name, kind, note) VALUES (?, ?, ?)",
                                [name, kind, (note or "").strip()]).lastrowid
        audit.record(conn, actor, "group_create", remote_addr, group_id=group_id, name=name,
                     kind=kind)
    return get_group(db, group_id)


def update_group(db: sqlite_utils.Database, group_id: int, *, actor: str,
                 name: str | None = None, note: str | None = None,
                 remote_addr: str | None = None) -> Group:
    with write(db) as conn:
        current = conn.execute("SELECT * FROM groups WHERE id = ?", [group_id]).fetchone()
        if current is None:
            raise NotFound(f"no group with id {group_id}")
        new_name = current["name"] if name is None else check_group_name(name,
                                                                          kind=current["kind"])
        taken = conn.execute("SELECT id FROM groups WHERE name = ?", [new_name]).fetchone()
        if taken and taken["id"] != group_id:
            raise ContactValidationError([_problem("name", "group_exists",
                                                   f"「{new_name}」というグループは既にあります",
                                                   "a group with this name exists")])
        new_note = current["note"] if note is None else note.strip()
        conn.execute("UPDATE groups SET name = ?, note = ? WHERE id = ?",
                     [new_name, new_note, group_id])
        if current["kind"] == "facility" and new_name != current["name"]:
            # The facility field names the facility group; rename them together.
            conn.execute("UPDATE contacts SET facility = ?, updated_at = ? WHERE facility = ?",
                         [new_name, now(), current["name"]])
        audit.record(conn, actor, "group_update", remote_addr, group_id=group_id,
                     name=new_name, old_name=current["name"])
    return get_group(db, group_id)


def delete_group(db: sqlite_utils.Database, group_id: int, *, actor: str,
                 remote_addr: str | None = None) -> None:
    """Delete a group; its members stay (only the memberships go)."""
    with write(db) as conn:
        row = conn.execute("SELECT name FROM groups WHERE id = ?", [group_id]).fetchone()
        if row is None:
            raise NotFound(f"no group with id {group_id}")
        conn.execute("DELETE FROM groups WHERE id = ?", [group_id])
        audit.record(conn, actor, "group_delete", remote_addr, group_id=group_id,
                     name=row["name"])


def set_contact_groups(db: sqlite_utils.Database, contact_id: int, group_ids: Iterable[int],
                       *, actor: str, remote_addr: str | None = None) -> Contact:
    """Make the contact a member of exactly these groups (facility group included)."""
    with write(db) as conn:
        _set_groups(conn, contact_id, group_ids, actor, remote_addr, keep_facility=False)
    return get_contact(db, contact_id)


def _set_groups(conn: sqlite3.Connection, contact_id: int, group_ids: Iterable[int],
                actor: str, remote_addr: str | None, *, keep_facility: bool) -> None:
    if not conn.execute("SELECT 1 FROM contacts WHERE id = ?", [contact_id]).fetchone():
        raise NotFound(f"no contact with id {contact_id}")
    ids = _check_group_ids(conn, group_ids)
    if keep_facility:
        ids = [g for g in ids if conn.execute(
            "SELECT kind FROM groups WHERE id = ?", [g]).fetchone()[0] != "facility"]
        conn.execute("DELETE FROM contact_groups WHERE contact_id = ? AND group_id NOT IN "
                     "(SELECT id FROM groups WHERE kind = 'facility')", [contact_id])
    else:
        conn.execute("DELETE FROM contact_groups WHERE contact_id = ?", [contact_id])
    conn.executemany("INSERT OR IGNORE INTO contact_groups (contact_id, group_id) "
                     "VALUES (?, ?)", [(contact_id, g) for g in ids])
    audit.record(conn, actor, "contact_groups", remote_addr, contact_id=contact_id,
                 group_ids=ids)


def add_to_group(db: sqlite_utils.Database, group_id: int, contact_ids: Iterable[int], *,
                 actor: str, remote_addr: str | None = None) -> int:
    """Add contacts to a group; returns how many were not members yet."""
    ids = sorted(set(int(c) for c in contact_ids))
    with write(db) as conn:
        _check_group_ids(conn, [group_id])
        added = 0
        for contact_id in ids:
            if not conn.execute("SELECT 1 FROM contacts WHERE id = ?", [contact_id]).fetchone():
                raise NotFound(f"no contact with id {contact_id}")
            added += conn.execute("INSERT OR IGNORE INTO contact_groups (contact_id, group_id) "
                                  "VALUES (?, ?)", [contact_id, group_id]).rowcount
        if added:
            audit.record(conn, actor, "group_add_members", remote_addr, group_id=group_id,
                         contact_ids=ids)
    return added


# CSV import and export live in appliance/contacts_csv.py and are part of this module's
# API. Loaded on first use (PEP 562) so that either module can be imported first.
_CSV_NAMES = ("ImportPreview", "ImportResult", "RowResult", "preview", "import_contacts",
              "export_contacts")


def __getattr__(name: str) -> Any:
    if name in _CSV_NAMES:
        from . import contacts_csv
        return getattr(contacts_csv, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Contact", "Group", "Problem", "ContactsError", "ContactValidationError", "NotFound",
    "ContactImportError", "ExportError", "CsvFileError", "check_fields", "check_group_name",
    "shift_group_name", "split_shift_group", "split_group_names", "get_contact",
    "find_by_phone", "find_by_patient_id", "patient_ids", "list_contacts", "count_contacts", "list_groups", "get_group",
    "get_group_by_name", "group_members", "add_contact", "update_contact",
    "deactivate_contact", "create_group", "update_group", "delete_group",
    "set_contact_groups", "add_to_group", "ImportPreview", "ImportResult", "RowResult",
    "preview", "import_contacts", "export_contacts",
]
