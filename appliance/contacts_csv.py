"""CSV import (preview, all-or-nothing upsert) and export of contacts.

The rules are in appliance/contacts.py's docstring; this module applies them. Use it
through appliance.contacts (`contacts.preview`, `contacts.import_contacts`,
`contacts.export_contacts`).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from . import audit, roster_csv
from .contacts import (
    ContactImportError, CsvFileError, ExportError, Problem, _conn, _problem, check_fields,
    check_group_name, ContactValidationError, list_contacts, shift_group_name,
    split_group_names, split_shift_group)
from .db import now, write
from .phone import display_number

CONTACT_FIELDS = ("patient_id", "name", "kana", "phone", "facility", "note")
# Which group kinds a column decides, for contacts that already exist.
MANAGED_KINDS = {"facility": ("facility",), "days": ("shift",), "shift": ("shift",),
                 "groups": ("custom",)}
EXPORT_FIELDS = ("patient_id", "name", "kana", "phone", "facility", "days", "shift", "groups",
                 "note", "no_ring")
# The 自動電話なし column: what a spreadsheet may hold for yes and for no. Anything else is a
# problem named by row, so a typo never silently rings a patient who asked not to be rung.
NO_RING_YES = ("はい", "○", "〇", "◯", "1", "yes", "y", "true", "✓", "✔")
NO_RING_NO = ("", "いいえ", "0", "no", "n", "false", "-", "ー")
# Characters that Unicode (and macOS) write differently from what CP932 holds for the same
# JIS character; mapping them is not a change of text, only of code point.
_CP932_EQUIVALENTS = str.maketrans({"\u301c": "\uff5e", "\u2016": "\u2225", "\u2212": "\uff0d",
                                    "\u00a2": "\uffe0", "\u00a3": "\uffe1", "\u00ac": "\uffe2",
                                    "\u2014": "\u2015"})


@dataclass(frozen=True)
class RowResult:
    row: int                                # the header is row 1
    status: str                             # 'ok' | 'error'
    problems: tuple[Problem, ...]
    fields: dict[str, Any]                  # cleaned: phone in E.164, groups a list
    action: str | None = None               # 'new' | 'update' | 'unchanged' (when ok)
    contact_id: int | None = None           # the existing contact an update goes to
    changes: tuple[str, ...] = ()           # fields (and 'groups', 'active') an update changes
    old: dict[str, Any] = field(default_factory=dict)   # what an update replaces: old → new

    @property
    def new(self) -> dict[str, Any]:
        """The values an update writes, for the fields in `old` (the preview's old → new)."""
        return {k: (self.fields.get(k) if k != "active" else True) for k in self.old}

    @property
    def reason(self) -> str:
        return "; ".join(f"{p.ja} ({p.en})" for p in self.problems)

    @property
    def display_phone(self) -> str:
        value = self.fields.get("phone") or ""
        return display_number(value) if value.startswith("+") else value


@dataclass(frozen=True)
class ImportPreview(roster_csv.PreviewCounts):
    encoding: str
    columns: dict[str, str]                 # field -> header as written
    ignored_columns: tuple[str, ...]
    rows: tuple[RowResult, ...]
    groups_to_create: tuple[tuple[str, str], ...]   # (name, kind)

    @property
    def new(self) -> int:
        return sum(r.action == "new" for r in self.rows)

    @property
    def updated(self) -> int:
        return sum(r.action == "update" for r in self.rows)

    @property
    def unchanged(self) -> int:
        return sum(r.action == "unchanged" for r in self.rows)


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    groups_created: tuple[str, ...]
    dry_run: bool
    preview: ImportPreview
    skipped: tuple[RowResult, ...] = ()     # rows left out by skip_errors, with their problems


# -- preview ------------------------------------------------------------------------------

def preview(db: sqlite_utils.Database, data: bytes) -> ImportPreview:
    """Every row's outcome against the database as it is now; nothing is written.

    Raises ContactImportError (with row None or the row to blame) when the file as a whole
    cannot be read: empty, too big, not UTF-8/CP932, a required column missing, bad CSV.
    """
    sheet = _read(data)
    return _plan(_conn(db), sheet)


def _read(data: bytes) -> roster_csv.Sheet:
    try:
        return roster_csv.read(data)
    except CsvFileError as exc:
        raise ContactImportError([Problem(field="file", code="file", ja=exc.message_ja,
                                          en=exc.message_en, row=exc.row)]) from None


@dataclass
class _Existing:
    """The database's contacts and groups, read once per import."""
    by_id: dict[int, sqlite3.Row]
    by_phone: dict[str, sqlite3.Row]
    by_patient_id: dict[str, sqlite3.Row]
    group_kind: dict[str, str]                      # name -> kind
    memberships: dict[int, set[str]]                # contact id -> group names

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> _Existing:
        rows = conn.execute("SELECT * FROM contacts").fetchall()
        memberships: dict[int, set[str]] = {}
        for r in conn.execute("SELECT cg.contact_id, g.name FROM contact_groups cg "
                              "JOIN groups g ON g.id = cg.group_id"):
            memberships.setdefault(r["contact_id"], set()).add(r["name"])
        return cls(by_id={r["id"]: r for r in rows},
                   by_phone={r["phone"]: r for r in rows},
                   by_patient_id={r["patient_id"]: r for r in rows if r["patient_id"]},
                   group_kind={r["name"]: r["kind"]
                               for r in conn.execute("SELECT name, kind FROM groups")},
                   memberships=memberships)


@dataclass
class _Planner:
    sheet: roster_csv.Sheet
    existing: _Existing
    seen_phone: dict[str, int] = field(default_factory=dict)
    seen_patient_id: dict[str, int] = field(default_factory=dict)
    seen_contact: dict[int, int] = field(default_factory=dict)
    new_groups: dict[str, str] = field(default_factory=dict)

    def row(self, record: roster_csv.Record) -> RowResult:
        fields, problems = self.check(record)
        if record.width > self.sheet.width:
            # Excel writes every row as wide as the header; a wider row is almost always a
            # comma inside an unquoted name, which shifts the other cells: their problems
            # would only be noise, so this one is the row's only problem.
            problem = _problem(
                "row", "too_many_cells",
                f"見出しより列が多い行です（{record.width}列、見出しは{self.sheet.width}列）。"
                "名前などに「,」が入っていないか確かめてください",
                f"the row has {record.width} cells but the header has {self.sheet.width}; "
                "is there an unquoted comma in a name?")
            return RowResult(record.row, "error", (_at(problem, record.row),), _public(fields))
        self.check_duplicates(record.row, fields, problems)
        contact = self.match(record.row, fields, problems)
        if problems:
            return RowResult(record.row, "error", tuple(_at(p, record.row) for p in problems),
                             _public(fields))
        for name, kind in fields["_derived"]:
            if name not in self.existing.group_kind and name not in self.new_groups:
                self.new_groups[name] = kind
        if contact is None:
            return RowResult(record.row, "ok", (), _public(fields), "new")
        changes = self.changes(contact, fields)
        old: dict[str, Any] = {k: contact[k] for k in changes if k in CONTACT_FIELDS}
        if "no_ring" in changes:
            old["no_ring"] = bool(contact["no_ring"])
        if "active" in changes:
            old["active"] = False
        if "groups" in changes:
            old["groups"] = sorted(self.existing.memberships.get(contact["id"], set()))
        return RowResult(record.row, "ok", (), _public(fields),
                         "update" if changes else "unchanged", contact["id"], changes, old)

    def check(self, record: roster_csv.Record) -> tuple[dict[str, Any], list[Problem]]:
        cells = record.cells
        given = {k: cells[k] for k in CONTACT_FIELDS if k in cells}
        fields, problems = check_fields(given)
        if "no_ring" in cells:
            fields["no_ring"] = _no_ring(cells["no_ring"], problems)
        groups: list[tuple[str, str]] = []
        if cells.get("facility", "").strip() and not any(p.field == "facility" for p in problems):
            groups.append((fields["facility"], "facility"))
        shift = shift_group_name(cells.get("days"), cells.get("shift"))
        if shift:
            groups.append((shift, "shift"))
        for name in split_group_names(cells.get("groups", "")):
            try:
                groups.append((check_group_name(name, kind="custom"), "custom"))
            except ContactValidationError as exc:
                problems.extend(_problem("groups", p.code, f"グループ「{name}」: {p.ja}",
                                         f"group {name!r}: {p.en}") for p in exc.problems)
        fields["_derived"] = groups
        return fields, problems

    def check_duplicates(self, row: int, fields: dict[str, Any], problems: list[Problem]
                         ) -> None:
        number = fields.get("phone")
        if number and not any(p.field == "phone" for p in problems):
            if number in self.seen_phone:
                first = self.seen_phone[number]
                problems.append(_problem("phone", "duplicate", f"{first}行目と同じ番号です",
                                         f"duplicate of row {first}"))
            else:
                self.seen_phone[number] = row
        patient_id = fields.get("patient_id")
        if patient_id:
            if patient_id in self.seen_patient_id:
                first = self.seen_patient_id[patient_id]
                problems.append(_problem("patient_id", "duplicate",
                                         f"{first}行目と同じ患者IDです",
                                         f"duplicate patient ID of row {first}"))
            else:
                self.seen_patient_id[patient_id] = row

    def match(self, row: int, fields: dict[str, Any], problems: list[Problem]
              ) -> sqlite3.Row | None:
        """The existing contact this row updates: by patient ID, else by number."""
        number, patient_id = fields.get("phone"), fields.get("patient_id")
        if any(p.field == "phone" for p in problems):
            number = None
        by_id = self.existing.by_patient_id.get(patient_id) if patient_id else None
        by_phone = self.existing.by_phone.get(number) if number else None
        if by_phone is not None and by_id is not None and by_phone["id"] != by_id["id"]:
            problems.append(_number_taken(by_phone))
            return None
        if by_id is None and by_phone is not None and patient_id and by_phone["patient_id"]:
            problems.append(_number_taken(by_phone))
            return None
        contact = by_id if by_id is not None else by_phone
        if contact is not None:
            first = self.seen_contact.setdefault(contact["id"], row)
            if first != row:
                problems.append(_problem("phone", "same_contact",
                                         f"{first}行目と同じ登録済みの方を更新しようとしています",
                                         f"updates the same existing contact as row {first}"))
        return contact

    def changes(self, contact: sqlite3.Row, fields: dict[str, Any]) -> tuple[str, ...]:
        changed = [k for k in CONTACT_FIELDS
                   if k in fields and fields[k] is not None and fields[k] != contact[k]]
        if fields.get("no_ring") is not None and fields["no_ring"] != bool(contact["no_ring"]):
            changed.append("no_ring")
        if not contact["active"]:
            changed.append("active")
        if self.memberships(contact["id"], fields) != self.existing.memberships.get(
                contact["id"], set()):
            changed.append("groups")
        return tuple(changed)

    def memberships(self, contact_id: int | None, fields: dict[str, Any]) -> set[str]:
        """The group names the contact belongs to after this row is applied."""
        wanted = {name for name, _ in fields["_derived"]}
        if contact_id is None:
            return wanted
        managed = {kind for column, kinds in MANAGED_KINDS.items()
                   if column in self.sheet.columns for kind in kinds}
        kept = {name for name in self.existing.memberships.get(contact_id, set())
                if self.existing.group_kind.get(name) not in managed}
        return kept | wanted


def _no_ring(cell: str, problems: list[Problem]) -> bool | None:
    value = cell.strip().lower()
    if value in NO_RING_YES:
        return True
    if value in NO_RING_NO:
        return False
    problems.append(_problem("no_ring", "not_yes_or_no",
                             f"「自動電話なし」は「はい」か空欄にしてください（「{cell.strip()}」）",
                             f"自動電話なし (no automatic call) takes はい or nothing, not "
                             f"{cell.strip()!r}"))
    return None


def _at(problem: Problem, row: int) -> Problem:
    return Problem(problem.field, problem.code, problem.ja, problem.en, row)


def _number_taken(owner: sqlite3.Row) -> Problem:
    who = owner["patient_id"] or f"#{owner['id']}"
    return _problem("phone", "phone_taken",
                    f"この番号は既に別の方（{who} {owner['name']}）に登録されています",
                    f"this number already belongs to another contact ({who})")


def _public(fields: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if not k.startswith("_")}
    out["groups"] = [name for name, _ in fields["_derived"]]
    out["_derived"] = fields["_derived"]
    return out


def _plan(conn: sqlite3.Connection, sheet: roster_csv.Sheet) -> ImportPreview:
    planner = _Planner(sheet, _Existing.load(conn))
    rows = tuple(planner.row(record) for record in sheet.records)
    return ImportPreview(encoding=sheet.encoding, columns=dict(sheet.columns),
                         ignored_columns=sheet.ignored, rows=rows,
                         groups_to_create=tuple(planner.new_groups.items()))


# -- import -------------------------------------------------------------------------------

def import_contacts(db: sqlite_utils.Database, data: bytes, *, actor: str,
                    dry_run: bool = False, remote_addr: str | None = None,
                    filename: str | None = None, skip_errors: bool = False) -> ImportResult:
    """Import a roster, all or nothing, in one BEGIN IMMEDIATE transaction.

    Any problem in any row raises ContactImportError listing every problem by row, and
    nothing is written (a refusal is audited). With *skip_errors*, the rows without a
    problem are imported and the others listed in the result's `skipped` (a patient with
    only a landline must not keep 199 others out); a file that cannot be read at all is
    still refused. dry_run checks everything and writes nothing.
    """
    if dry_run:
        plan = _plan(_conn(db), _read(data))
        if plan.error_count and not skip_errors:
            raise ContactImportError(plan.problems, plan)
        return _result(plan, dry_run=True)
    try:
        sheet = _read(data)
        with write(db) as conn:
            # Planned again inside the transaction: the preview the user saw may be stale.
            plan = _plan(conn, sheet)
            if plan.error_count and not skip_errors:
                raise ContactImportError(plan.problems, plan)
            created_groups = _apply(conn, plan, sheet)
            audit.record(conn, actor, "contacts_import", remote_addr, filename=filename,
                         encoding=plan.encoding, rows=len(plan.rows), created=plan.new,
                         updated=plan.updated, unchanged=plan.unchanged,
                         groups_created=created_groups,
                         skipped_rows=[r.row for r in plan.rows if r.status == "error"],
                         changes=[{"contact_id": r.contact_id, "old": r.old,
                                   "new": {k: sorted(v) if k == "groups" else v
                                           for k, v in r.new.items()}}
                                  for r in plan.rows if r.action == "update"])
    except ContactImportError as exc:
        with write(db) as conn:
            audit.record(conn, actor, "contacts_import_refused", remote_addr,
                         filename=filename, problems=len(exc.problems))
        raise
    return _result(plan, dry_run=False)


def _result(plan: ImportPreview, *, dry_run: bool) -> ImportResult:
    return ImportResult(created=plan.new, updated=plan.updated, unchanged=plan.unchanged,
                        groups_created=tuple(_groups_wanted(plan)), dry_run=dry_run,
                        preview=plan,
                        skipped=tuple(r for r in plan.rows if r.status == "error"))


def _groups_wanted(plan: ImportPreview) -> list[str]:
    """The new groups the imported rows use (not those only a skipped row named)."""
    used = {name for r in plan.rows if r.status == "ok" for name, _ in r.fields["_derived"]}
    return [name for name, _ in plan.groups_to_create if name in used]


def _apply(conn: sqlite3.Connection, plan: ImportPreview, sheet: roster_csv.Sheet
           ) -> list[str]:
    """Write the rows without problems; returns the names of the groups it created."""
    wanted_groups = _groups_wanted(plan)
    for name, kind in plan.groups_to_create:
        if name in wanted_groups:
            conn.execute("INSERT INTO groups (name, kind) VALUES (?, ?)", [name, kind])
    group_ids = {r["name"]: r["id"] for r in conn.execute("SELECT id, name FROM groups")}
    managed = sorted({kind for column, kinds in MANAGED_KINDS.items()
                      if column in sheet.columns for kind in kinds})
    at = now()
    for row in plan.rows:
        fields = row.fields
        wanted = [group_ids[name] for name, _ in fields["_derived"]]
        if row.action == "new":
            contact_id = conn.execute(
                "INSERT INTO contacts (patient_id, name, kana, phone, facility, note, active, "
                "no_ring, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                [fields.get("patient_id"), fields["name"], fields.get("kana", ""),
                 fields["phone"], fields.get("facility", ""), fields.get("note", ""),
                 int(bool(fields.get("no_ring"))), at, at]).lastrowid
        elif row.action == "update":
            contact_id = row.contact_id
            given = [k for k in (*CONTACT_FIELDS, "no_ring")
                     if k in fields and fields[k] is not None]
            sets = ", ".join(f"{k} = ?" for k in given)
            conn.execute(f"UPDATE contacts SET {sets}, active = 1, updated_at = ? WHERE id = ?",
                         [*(int(fields[k]) if k == "no_ring" else fields[k] for k in given),
                          at, contact_id])
            if managed:
                marks = ",".join("?" * len(managed))
                conn.execute("DELETE FROM contact_groups WHERE contact_id = ? AND group_id IN "
                             f"(SELECT id FROM groups WHERE kind IN ({marks}))",
                             [contact_id, *managed])
        else:
            continue
        conn.executemany("INSERT OR IGNORE INTO contact_groups (contact_id, group_id) "
                         "VALUES (?, ?)", [(contact_id, g) for g in wanted])
    return wanted_groups


# -- export -------------------------------------------------------------------------------

def export_contacts(db: sqlite_utils.Database, encoding: str = "cp932", *, actor: str,
                    remote_addr: str | None = None) -> bytes:
    """Active contacts as CSV that this import reads back (and Excel opens): CRLF,
    Japanese headers, numbers as 090-1234-5678 (Excel keeps the leading 0).

    encoding 'utf-8' writes a BOM so Excel detects it. 'cp932' refuses (ExportError naming
    every contact and field) when a name holds a character CP932 cannot represent, such as
    𠮷 — silently writing '?' would change a patient's name.
    """
    if encoding not in ("cp932", "utf-8"):
        raise ValueError(f"encoding must be 'cp932' or 'utf-8', not {encoding!r}")
    people = list_contacts(db)
    group_kind = {r["name"]: r["kind"] for r in _conn(db).execute("SELECT name, kind FROM groups")}
    rows = [_export_row(c, group_kind) for c in people]
    if encoding == "cp932":
        rows = [[cell.translate(_CP932_EQUIVALENTS) for cell in row] for row in rows]
        problems = [p for contact, row in zip(people, rows) for p in _cp932_problems(contact, row)]
        if problems:
            raise ExportError("CP932 (Shift_JIS) では表せない文字があります。UTF-8で書き出してください "
                              "(some characters cannot be written in CP932; export as UTF-8)",
                              problems)
    data = roster_csv.write([roster_csv.HEADERS_JA[f] for f in EXPORT_FIELDS], rows, encoding)
    with write(db) as conn:
        audit.record(conn, actor, "contacts_export", remote_addr, encoding=encoding,
                     contacts=len(rows))
    return data


def _export_row(contact, group_kind: dict[str, str]) -> list[str]:
    others = [g for g in contact.groups
              if not (group_kind.get(g) == "facility" and g == contact.facility)]
    shifts = [g for g in others if group_kind.get(g) == "shift"]
    days, shift = split_shift_group(shifts[0]) if shifts else ("", "")
    others = [g for g in others if not shifts or g != shifts[0]]
    values = {"patient_id": contact.patient_id or "", "name": contact.name,
              "kana": contact.kana, "phone": display_number(contact.phone),
              "facility": contact.facility, "days": days, "shift": shift,
              "groups": ";".join(others), "note": contact.note,
              "no_ring": "はい" if contact.no_ring else ""}
    return [values[f] for f in EXPORT_FIELDS]


def _cp932_problems(contact, row: list[str]) -> list[Problem]:
    problems = []
    for field_name, cell in zip(EXPORT_FIELDS, row):
        bad = [c for c in dict.fromkeys(cell) if not _cp932_ok(c)]
        if bad:
            who = f"{contact.name}（{contact.patient_id or '#' + str(contact.id)}）"
            label = roster_csv.HEADERS_JA[field_name]
            chars = "".join(bad)
            problems.append(Problem(
                field=field_name, code="not_cp932",
                ja=f"{who} の{label}の「{chars}」はCP932で表せません",
                en=f"contact {contact.name} ({contact.patient_id or contact.id}): {field_name} "
                   f"has {chars!r}, which CP932 cannot represent"))
    return problems


def _cp932_ok(char: str) -> bool:
    try:
        char.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True
