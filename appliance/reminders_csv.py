"""The appointments file: a CSV export of the clinic's scheduling system, previewed and then
imported all or nothing, like the contacts roster (same encodings, same refusals).

Columns (Japanese or English headers; see LAYOUT): 患者ID and/or 携帯電話 (matched to a
contact by patient ID, else by number), 種類 (a reminder kind's name), 予約日 + 時刻 or
予約日時, and optionally 予約ID (the clinic system's appointment ID: a row with the same ID
changes that appointment), 状態 (キャンセル / 取消 withdraws it) and 氏名 (checked against
the contact's name: a different name is shown as a warning).

A row without 予約ID is matched to the patient's reminder of the same kind on the same day.
An appointment already past is ignored (exports often include today's morning); one too
close to remind in time is imported and reported missed, never sent late.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field

import sqlite_utils

from . import audit, phone, reminders, roster_csv
from .config import Config
from .contacts import Problem
from .db import write

LAYOUT = roster_csv.Layout(
    synonyms={
        "patient_id": ("患者id", "id", "patient_id", "patientid", "患者番号", "カルテ番号"),
        "phone": ("携帯電話", "携帯", "携帯番号", "携帯電話番号", "mobile", "電話番号", "電話",
                  "phone", "tel"),
        "name": ("氏名", "名前", "name", "患者名", "患者氏名"),
        "kind": ("種類", "種別", "予約種別", "区分", "予約区分", "kind", "type"),
        "date": ("予約日", "日付", "date", "受診日", "来院日"),
        "time": ("時刻", "予約時刻", "時間", "開始時刻", "time"),
        "datetime": ("予約日時", "日時", "datetime", "appointment_at"),
        "external_id": ("予約id", "予約番号", "appointment_id", "appointmentid"),
        "status": ("状態", "ステータス", "status"),
    },
    required=("kind",),
    headers={"patient_id": "患者ID", "phone": "携帯電話", "name": "氏名", "kind": "種類",
             "date": "予約日", "time": "時刻", "datetime": "予約日時", "external_id": "予約ID",
             "status": "状態"},
    phone_secondary=("電話番号", "電話", "phone", "tel"))
CANCELLED = {"キャンセル", "取消", "取り消し", "取消し", "中止", "cancel", "cancelled", "canceled"}
EXTERNAL_ID_MAX = 64
_REIWA = re.compile(r"^(?:令和|r)(\d{1,2})[年./-](\d{1,2})[月./-](\d{1,2})日?$")
_DATE = re.compile(r"^(\d{4})[年./-](\d{1,2})[月./-](\d{1,2})日?$")
_TIME = re.compile(r"^(\d{1,2})(?::|時)(\d{2})?(?::\d{2}|分)?$")


class ReminderImportError(Exception):
    """Nothing was imported; `.problems` lists each with its row (None: the whole file)."""

    def __init__(self, problems: list[Problem], preview: ImportPreview | None = None):
        self.problems = list(problems)
        self.preview = preview
        super().__init__(f"{len(self.problems)}件の問題があるため、何も取り込んでいません "
                         f"(nothing imported: {len(self.problems)} problem(s))\n"
                         + "\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class RowResult:
    row: int
    status: str                          # 'ok' | 'error'
    problems: tuple[Problem, ...]
    action: str | None = None            # new, changed, unchanged, withdraw, past
    contact_id: int | None = None
    contact_name: str | None = None
    kind_id: int | None = None
    kind_name: str | None = None
    appointment_at: float | None = None
    previous_at: float | None = None     # a changed appointment's time before
    external_id: str | None = None
    reminder_id: int | None = None       # the reminder a change or withdrawal goes to
    warnings: tuple[str, ...] = ()       # shown, not refused (a different name, too late)


@dataclass(frozen=True)
class ImportPreview(roster_csv.PreviewCounts):
    encoding: str
    columns: dict[str, str]
    ignored_columns: tuple[str, ...]
    rows: tuple[RowResult, ...]

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.rows)


@dataclass(frozen=True)
class ImportResult:
    new: int
    changed: int
    unchanged: int
    withdrawn: int
    past: int
    preview: ImportPreview


def _problem(row: int, field_: str, code: str, ja: str, en: str) -> Problem:
    return Problem(field=field_, code=code, ja=ja, en=en, row=row)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def parse_date(text: str) -> dt.date:
    """2027/01/15, 2027-1-15, 2027年1月15日, 令和9年1月15日, R9.1.15 (a weekday in brackets is
    allowed after it); ValueError otherwise."""
    value = re.sub(r"[(（][^)）]*[)）]$", "", _fold(text)).strip().lower().replace(" ", "")
    match = _REIWA.match(value)
    if match:
        year, month, day = 2018 + int(match.group(1)), int(match.group(2)), int(match.group(3))
    elif match := _DATE.match(value):
        year, month, day = (int(g) for g in match.groups())
    else:
        raise ValueError(text)
    return dt.date(year, month, day)


def parse_time(text: str) -> dt.time:
    """14:30, 9:00, 14:30:00, 14時30分, 14時; ValueError otherwise."""
    match = _TIME.match(_fold(text).replace(" ", ""))
    if not match:
        raise ValueError(text)
    return dt.time(int(match.group(1)), int(match.group(2) or 0))


def _when(cells: dict[str, str], zone) -> float:
    if cells.get("datetime", "").strip():
        day, _sep, clock = _fold(cells["datetime"]).replace("T", " ").partition(" ")
        if not clock.strip():
            raise ValueError(cells["datetime"])
        moment = dt.datetime.combine(parse_date(day), parse_time(clock.strip()))
    else:
        moment = dt.datetime.combine(parse_date(cells.get("date", "")),
                                     parse_time(cells.get("time", "")))
    return moment.replace(tzinfo=zone).timestamp()


@dataclass
class _Planner:
    conn: sqlite3.Connection
    config: Config
    now: float
    kinds: dict[str, reminders.Kind]
    seen_external: dict[str, int] = field(default_factory=dict)
    seen_slot: dict[tuple, int] = field(default_factory=dict)

    def row(self, record: roster_csv.Record) -> RowResult:
        cells, n = record.cells, record.row
        problems: list[Problem] = []
        contact = self.contact(n, cells, problems)
        k = self.kinds.get(_fold(cells.get("kind", "")))
        if k is None:
            shown = "、".join(self.kinds) or "（なし: リマインダーの画面で種類を作ってください）"
            problems.append(_problem(n, "kind", "unknown_kind",
                                     f"種類「{cells.get('kind', '')}」がありません（使える種類: {shown}）",
                                     f"unknown kind {cells.get('kind', '')!r} "
                                     f"(kinds: {', '.join(self.kinds) or 'none yet'})"))
        at = None
        try:
            at = _when(cells, self.config.zone)
        except (ValueError, TypeError):
            problems.append(_problem(n, "date", "bad_date",
                                     "予約日時が読めません（例: 2027/01/15 と 14:30）",
                                     "cannot read the appointment's date and time "
                                     "(e.g. 2027/01/15 and 14:30)"))
        external_id = _fold(cells.get("external_id", "")) or None
        if external_id and len(external_id) > EXTERNAL_ID_MAX:
            problems.append(_problem(n, "external_id", "too_long",
                                     f"予約IDは{EXTERNAL_ID_MAX}文字までです",
                                     f"the appointment ID is longer than {EXTERNAL_ID_MAX}"))
        withdraw = _fold(cells.get("status", "")).lower() in CANCELLED
        if problems:
            return RowResult(n, "error", tuple(problems))
        self.duplicates(n, external_id, contact["id"], k.id, at, problems)
        if problems:
            return RowResult(n, "error", tuple(problems))
        return self.outcome(n, cells, contact, k, at, external_id, withdraw)

    def contact(self, n: int, cells: dict[str, str], problems: list[Problem]):
        patient_id = _fold(cells.get("patient_id", ""))
        number = cells.get("phone", "").strip()
        by_id = by_phone = None
        if patient_id:
            by_id = self.conn.execute("SELECT * FROM contacts WHERE patient_id = ?",
                                      [patient_id]).fetchone()
            if by_id is None:
                problems.append(_problem(n, "patient_id", "no_such_patient",
                                         f"患者ID「{patient_id}」の連絡先がありません",
                                         f"no contact with patient ID {patient_id!r}"))
        if number:
            try:
                e164 = phone.normalise_mobile(number)
            except phone.PhoneError as exc:
                if by_id is None:
                    problems.append(_problem(n, "phone", exc.reason, exc.message_ja,
                                             exc.message_en))
            else:
                by_phone = self.conn.execute("SELECT * FROM contacts WHERE phone = ?",
                                             [e164]).fetchone()
                if by_phone is None and not patient_id:
                    problems.append(_problem(n, "phone", "no_such_number",
                                             "この番号の連絡先がありません",
                                             "no contact has this number"))
        if not patient_id and not number:
            problems.append(_problem(n, "patient_id", "no_patient",
                                     "患者IDも携帯電話番号もありません",
                                     "neither a patient ID nor a number"))
        if by_id is not None and by_phone is not None and by_id["id"] != by_phone["id"]:
            problems.append(_problem(n, "phone", "different_patients",
                                     "患者IDと携帯電話番号が別の方を指しています",
                                     "the patient ID and the number belong to different "
                                     "contacts"))
            return None
        contact = by_id or by_phone
        if contact is not None and not contact["active"]:
            problems.append(_problem(n, "patient_id", "inactive",
                                     f"「{contact['name']}」さんは送信停止中です（連絡先を有効にしてください）",
                                     f"contact #{contact['id']} is deactivated"))
        return contact

    def duplicates(self, n: int, external_id: str | None, contact_id: int, kind_id: int,
                   at: float, problems: list[Problem]) -> None:
        if external_id:
            first = self.seen_external.setdefault(external_id, n)
            if first != n:
                problems.append(_problem(n, "external_id", "duplicate",
                                         f"{first}行目と同じ予約IDです",
                                         f"the same appointment ID as row {first}"))
            return
        day = dt.datetime.fromtimestamp(at, self.config.zone).date()
        first = self.seen_slot.setdefault((contact_id, kind_id, day), n)
        if first != n:
            problems.append(_problem(n, "date", "duplicate",
                                     f"{first}行目と同じ方・同じ種類・同じ日の予約です（予約IDの列で区別してください）",
                                     f"the same patient, kind and day as row {first} "
                                     "(add an appointment ID column to tell them apart)"))

    def outcome(self, n: int, cells: dict[str, str], contact, k: reminders.Kind, at: float,
                external_id: str | None, withdraw: bool) -> RowResult:
        zone = self.config.zone
        existing = (reminders.by_external_id(self.conn, external_id) if external_id else
                    reminders.on_day(self.conn, contact["id"], k.id,
                                     dt.datetime.fromtimestamp(at, zone).date(), zone))
        warnings = []
        name = _fold(cells.get("name", ""))
        if name and name.replace(" ", "") != _fold(contact["name"]).replace(" ", ""):
            warnings.append(f"氏名「{name}」が登録の「{contact['name']}」と違います "
                            f"(the name differs from the contact's)")
        common = dict(contact_id=contact["id"], contact_name=contact["name"], kind_id=k.id,
                      kind_name=k.name, appointment_at=at, external_id=external_id,
                      reminder_id=existing["id"] if existing else None)
        if withdraw:
            action = "withdraw" if existing and existing["state"] != "withdrawn" else "unchanged"
            return RowResult(n, "ok", (), action, warnings=tuple(warnings), **common)
        if at <= self.now:
            return RowResult(n, "ok", (), "past", warnings=tuple(warnings), **common)
        if existing is None:
            action, previous = "new", None
        elif (existing["appointment_at"] == at and existing["contact_id"] == contact["id"]
              and existing["kind_id"] == k.id and existing["state"] != "withdrawn"):
            action, previous = "unchanged", None
        else:
            action, previous = "changed", existing["appointment_at"]
        if action != "unchanged" and reminders.planned_at(k, at, zone, now=self.now) is None:
            warnings.append("リマインダーを送れる時間がもう残っていません（送れなかった一覧に出ます）"
                            " (too late to remind: it will be reported, not sent)")
        return RowResult(n, "ok", (), action, previous_at=previous, warnings=tuple(warnings),
                         **common)


def _read(data: bytes) -> roster_csv.Sheet:
    try:
        sheet = roster_csv.read(data, LAYOUT)
    except roster_csv.CsvFileError as exc:
        raise ReminderImportError([Problem(field="file", code="file", ja=exc.message_ja,
                                           en=exc.message_en, row=exc.row)]) from None
    columns = sheet.columns
    if "patient_id" not in columns and "phone" not in columns:
        raise ReminderImportError([Problem(
            "file", "file", "「患者ID」か「携帯電話」の列が必要です",
            "the file needs a 患者ID (patient ID) or 携帯電話 (mobile) column", 1)])
    if "datetime" not in columns and not ("date" in columns and "time" in columns):
        raise ReminderImportError([Problem(
            "file", "file", "「予約日」と「時刻」の列か、「予約日時」の列が必要です",
            "the file needs 予約日 and 時刻 columns, or a 予約日時 column", 1)])
    return sheet


def _plan(conn: sqlite3.Connection, config: Config, sheet: roster_csv.Sheet,
          now: float) -> ImportPreview:
    planner = _Planner(conn, config, now, {k.name: k for k in reminders.kinds(conn)})
    return ImportPreview(encoding=sheet.encoding, columns=dict(sheet.columns),
                         ignored_columns=sheet.ignored,
                         rows=tuple(planner.row(r) for r in sheet.records))


def preview(db: sqlite_utils.Database, config: Config, data: bytes, *,
            now: float) -> ImportPreview:
    """Every row's outcome against the reminders as they are now; nothing is written."""
    return _plan(db.conn, config, _read(data), now)


def import_reminders(db: sqlite_utils.Database, config: Config, data: bytes, *, actor: str,
                     now: float, filename: str | None = None,
                     remote_addr: str | None = None) -> ImportResult:
    """All or nothing, in one write transaction: any problem in any row refuses the file
    (ReminderImportError, audited), nothing half-done."""
    try:
        sheet = _read(data)
        with write(db) as conn:
            # Planned again inside the transaction: the preview staff saw may be stale.
            plan = _plan(conn, config, sheet, now)
            if plan.error_count:
                raise ReminderImportError(plan.problems, plan)
            _apply(conn, plan, actor, now)
            audit.record(conn, actor, "reminders_import", remote_addr, filename=filename,
                         encoding=plan.encoding, rows=len(plan.rows), new=plan.count("new"),
                         changed=plan.count("changed"), withdrawn=plan.count("withdraw"),
                         unchanged=plan.count("unchanged"), past=plan.count("past"))
    except ReminderImportError as exc:
        with write(db) as conn:
            audit.record(conn, actor, "reminders_import_refused", remote_addr,
                         filename=filename, problems=len(exc.problems))
        raise
    return ImportResult(new=plan.count("new"), changed=plan.count("changed"),
                        unchanged=plan.count("unchanged"), withdrawn=plan.count("withdraw"),
                        past=plan.count("past"), preview=plan)


def _apply(conn: sqlite3.Connection, plan: ImportPreview, actor: str, now: float) -> None:
    for r in plan.rows:
        if r.action == "withdraw":
            reminders.withdraw(conn, r.reminder_id, actor=actor, now=now)
        elif r.action in ("new", "changed"):
            existing = conn.execute("SELECT * FROM reminders WHERE id = ?",
                                    [r.reminder_id]).fetchone() if r.reminder_id else None
            reminders.upsert(conn, contact_id=r.contact_id, kind_id=r.kind_id,
                             appointment_at=r.appointment_at, actor=actor, now=now,
                             source="csv", external_id=r.external_id, existing=existing)


def summary_line(result: ImportResult) -> str:
    return (f"new {result.new}, changed {result.changed}, withdrawn {result.withdrawn}, "
            f"unchanged {result.unchanged}, past (ignored) {result.past}")

