"""Message templates and their placeholders ({name}, {clinic}, {date}, {time}…).

Placeholders use str.format's syntax, and so does escaping: a literal brace is written
`{{` or `}}`. Only bare names from ALLOWED are placeholders — no format specs, conversions,
indexes or attributes — so a template can never reach into Python objects, and a typo such
as {nmae} is refused when the template is saved rather than sent to 200 patients.

Rendering substitutes values literally (a name containing "{" is just text) and refuses to
render when a used placeholder has no value, before anything is queued.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import string
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from . import audit
from .db import now, write

ALLOWED = frozenset({"name", "kana", "clinic", "date", "time", "original_time"})
# The order staff see them in the editor, with what each one becomes.
DESCRIPTIONS = {
    "name": ("氏名", "the patient's name"),
    "kana": ("フリガナ", "the patient's name in kana"),
    "clinic": ("クリニック名", "the clinic's name (configuration)"),
    "date": ("日付", "a date, e.g. 7月1日(火)"),
    "time": ("時刻", "a time, e.g. 14:30"),
    "original_time": ("元の時刻", "the time something was planned for, e.g. 9:00"),
}
PER_CONTACT = frozenset({"name", "kana"})
# What a recurring schedule can fill when it fires unattended: each person's own values and
# the clinic's name (always), nothing a sender would type in (a date, a time).
SCHEDULE_SUPPLIES: frozenset[str] = frozenset()
NAME_MAX = 50
TEXT_MAX = 1000
WEEKDAYS_JA = "月火水木金土日"
# What a preview shows: a message as a patient would read it.
PREVIEW_VALUES = {
    "name": "山田 花子",
    "kana": "ヤマダ ハナコ",
    "date": "12月1日(月)",
    "time": "14:00",
    "original_time": "9:00",
}
# Values long enough that a template which fits with them fits for nearly everyone (for
# counting, never shown); the broadcast checks each rendered message again before it
# queues anything.
SAMPLE_VALUES = {
    "name": "山田山田 花子花子",
    "kana": "ヤマダヤマダ ハナコハナコ",
    "date": "12月31日(水)",
    "time": "23:59",
    "original_time": "23:59",
}
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template or its rendering is refused; `.field` is 'name' or 'text' when known.

    Messages are written in both languages ("日本語 (English)"); `ja` and `en` are the halves
    (wording.error_text shows the reader's).
    """

    def __init__(self, message: str, *, field: str | None = None, ja: str | None = None,
                 en: str | None = None):
        from .wording import in_language
        self.field = field
        self.ja = ja or in_language(message, "ja")
        self.en = en or in_language(message, "en")
        super().__init__(message)


def allowed_list() -> str:
    return ", ".join("{" + name + "}" for name in DESCRIPTIONS)


def parse(text: str) -> list[tuple[str, str | None]]:
    """The template as (literal text, placeholder name or None) pieces."""
    try:
        pieces = list(_FORMATTER.parse(text))
    except ValueError as exc:
        en = _syntax_message(text, str(exc))
        ja = ("{ や } が1つだけあります。括弧そのものは {{ や }} と書き、差し込み項目は {name} "
              "のように書いてください")
        raise TemplateError(f"{ja} / {en}", field="text", ja=ja, en=en) from None
    result = []
    for literal, name, spec, conversion in pieces:
        if name is None:
            result.append((literal, None))
            continue
        if spec or conversion or not name.isidentifier():
            shown = "{" + name + ("!" + conversion if conversion else "")
            shown += (":" + spec if spec else "") + "}"
            en = (f"{shown} is not a placeholder: write a bare name such as {{name}}; for a "
                  "literal brace write {{ or }}")
            ja = (f"{shown} は差し込み項目として使えません。{{name}} のように名前だけを書いて"
                  "ください（括弧そのものは {{ や }} と書きます）")
            raise TemplateError(f"{ja} / {en}", field="text", ja=ja, en=en)
        result.append((literal, name))
    return result


def _syntax_message(text: str, detail: str) -> str:
    return ("a single { or } is not allowed: write {{ or }} for a literal brace, or a "
            "placeholder such as {name} " f"({detail})")


def placeholders(text: str) -> set[str]:
    """Every placeholder name used in *text* (known or not)."""
    return {name for _, name in parse(text) if name is not None}


def unknown_placeholders(text: str) -> list[str]:
    """Placeholder names not in ALLOWED, in order of first use."""
    unknown: list[str] = []
    for _, name in parse(text):
        if name is not None and name not in ALLOWED and name not in unknown:
            unknown.append(name)
    return unknown


def format_date(value: dt.date) -> str:
    return f"{value.month}月{value.day}日({WEEKDAYS_JA[value.weekday()]})"


def format_time(value: dt.time | dt.datetime) -> str:
    return f"{value.hour}:{value.minute:02d}"


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_time(value) if "time" in name else format_date(value)
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, dt.time):
        return format_time(value)
    return str(value)


def render(text: str, *, contact_name: str | None = None, clinic: str | None = None,
           date: Any = None, time: Any = None, original_time: Any = None,
           kana: str | None = None) -> str:
    """The message for one person. Refuses (TemplateError) when a used value is missing.

    date accepts a str or a date (7月1日(火)); time and original_time a str, a time or a
    datetime (14:30).
    """
    values = {"name": contact_name, "kana": kana, "clinic": clinic, "date": date,
              "time": time, "original_time": original_time}
    out: list[str] = []
    missing: list[str] = []
    for literal, name in parse(text):
        out.append(literal)
        if name is None:
            continue
        if name not in ALLOWED:
            raise TemplateError(f"unknown placeholder {{{name}}} (allowed: {allowed_list()})",
                                field="text", ja=f"使えない差し込み項目です: {{{name}}}"
                                                 f"（使えるもの: {allowed_list()}）")
        value = values[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            if name not in missing:
                missing.append(name)
            continue
        out.append(_as_text(name, value))
    if missing:
        names = ", ".join("{" + n + "}" for n in missing)
        raise TemplateError(f"no value for {names}: fill it in before sending "
                            f"（{names} の値が入力されていません）", field="text",
                            en=f"no value for {names}: fill it in before sending",
                            ja=f"{names} の値が入力されていません。送る前に入れてください")
    return "".join(out)


def needs_values(text: str) -> list[str]:
    """Placeholders the sender must fill in (not per-contact and not the clinic's name)."""
    return [n for n in DESCRIPTIONS if n in placeholders(text)
            and n not in PER_CONTACT and n != "clinic"]


def preview(text: str, *, clinic: str, supplied=None, who: str | None = None) -> str:
    """*text* as a patient would read it, with ordinary example values (PREVIEW_VALUES).

    With *supplied* (and *who*), as check_text: TemplateError when the text could not be
    sent with only those values — a schedule's preview says so instead of inventing a date.
    """
    if supplied is not None:
        check_text(text, clinic=clinic, supplied=supplied, who=who, length=False)
    return render(text, clinic=clinic, **{
        ("contact_name" if k == "name" else k): v for k, v in PREVIEW_VALUES.items()})


def schedule_preview(text: str, *, clinic: str) -> str:
    """The preview of a text a recurring schedule sends (it fills no date or time)."""
    return preview(text, clinic=clinic, supplied=SCHEDULE_SUPPLIES, who="定期送信")


def check_text(text: str, *, clinic: str, supplied=None, who: str | None = None,
               length: bool = True) -> None:
    """Everything the sender checks of a text before it queues anything, for a text that
    will be sent with the values in *supplied* (default: every placeholder has one).

    The one check behind every door: a broadcast's plan runs it before it renders the text
    for each person, and a schedule or a template runs it when it is saved, with the values
    it will have when it fires — so a text that cannot be sent is refused when it is
    written, not when it is due. TemplateError (field 'text') names what is wrong.
    *who* names what cannot supply a missing value ("定期送信"), for the message. *length*:
    measure with long sample values (a plan measures each person's own message instead).
    """
    if not text or not text.strip():
        raise TemplateError("本文を入力してください (the text is empty)", field="text")
    _check_full_width_braces(text)
    unknown = unknown_placeholders(text)
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        raise TemplateError(f"使えない差し込み項目です: {names} "
                            f"(unknown placeholder; allowed: {allowed_list()})", field="text",
                            ja=f"使えない差し込み項目です: {names}（使えるもの: {allowed_list()}）")
    supplied = ALLOWED if supplied is None else set(supplied) | PER_CONTACT | {"clinic"}
    missing = [n for n in DESCRIPTIONS if n in placeholders(text) and n not in supplied]
    if missing:
        names = ", ".join("{" + n + "}" for n in missing)
        if who:
            raise TemplateError(f"{who}では {names} に値を入れられません。日付や時刻は本文に"
                                f"直接書いてください (a {who} cannot fill {names}: write the "
                                "date or time into the text)", field="text")
        raise TemplateError(f"no value for {names}: fill it in before sending "
                            f"（{names} の値が入力されていません）", field="text",
                            en=f"no value for {names}: fill it in before sending",
                            ja=f"{names} の値が入力されていません。送る前に入れてください")
    if length:
        _check_length(text, clinic)


def measure(text: str, *, clinic: str):
    """The SMS count of *text* rendered with long sample values (modem.pdu.TextCount).

    Raises modem.errors.MessageTooLong when it would need more than the modem's maximum.
    """
    from modem import pdu
    sample = render(text, clinic=clinic, **{
        ("contact_name" if k == "name" else k): v for k, v in SAMPLE_VALUES.items()})
    pdu.split(sample)  # raises MessageTooLong past the maximum; count() only measures
    return pdu.count(sample)


# -- stored templates -------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    id: int
    name: str
    text: str
    created_at: float
    updated_at: float
    priority: str = "routine"           # how it is sent by default…
    choices: tuple[str, ...] = ()       # …with these reply choices…
    group_ids: tuple[int, ...] = ()     # …to these groups (those that still exist)

    @property
    def placeholders(self) -> set[str]:
        return placeholders(self.text)


def validate(name: str, text: str, *, clinic: str) -> tuple[str, str]:
    """The cleaned (name, text) or TemplateError naming the field."""
    name = (name or "").strip()
    if not name:
        raise TemplateError("テンプレート名を入力してください (the name is empty)", field="name")
    if len(name) > NAME_MAX:
        raise TemplateError(f"テンプレート名は{NAME_MAX}文字までです "
                            f"(the name is longer than {NAME_MAX} characters)", field="name")
    text = (text or "").strip()
    if len(text) > TEXT_MAX:
        raise TemplateError(f"本文が長すぎます (the text is longer than {TEXT_MAX} characters)",
                            field="text")
    check_text(text, clinic=clinic)
    return name, text


def _check_full_width_braces(text: str) -> None:
    # An IME in full-width mode turns {name} into ｛name｝, which would be sent as is.
    for name in ALLOWED:
        if f"｛{name}｝" in text:
            raise TemplateError(f"｛{name}｝ は全角の括弧です。半角で {{{name}}} と書いてください "
                                f"(use half-width braces: {{{name}}})", field="text")


def _check_length(text: str, clinic: str) -> None:
    from modem.errors import MessageTooLong
    try:
        measure(text, clinic=clinic)
    except MessageTooLong as exc:
        raise TemplateError(f"本文が長すぎてSMSで送れません (too long for SMS: {exc})",
                            field="text") from None


def _row(row: sqlite3.Row | dict) -> Template:
    return Template(id=row["id"], name=row["name"], text=row["text"],
                    created_at=row["created_at"], updated_at=row["updated_at"],
                    priority=row["priority"], choices=tuple(json.loads(row["choices"] or "[]")),
                    group_ids=tuple(json.loads(row["group_ids"] or "[]")))


def _defaults(conn: sqlite3.Connection, priority: str, choices: list[str] | tuple[str, ...],
              group_ids: list[int] | tuple[int, ...]) -> tuple[str, str | None, str | None]:
    """The checked (priority, choices JSON, group ids JSON) a template is stored with."""
    if priority not in ("emergency", "routine"):
        raise TemplateError(f"優先度を選んでください (priority must be emergency or routine, "
                            f"not {priority!r})", field="priority")
    choices = [c.strip() for c in choices if c and c.strip()]
    if len(choices) > 9:
        raise TemplateError("返信の選択肢は9個までです (at most 9 reply choices)", field="choices")
    ids = sorted({int(g) for g in group_ids})
    if ids:
        marks = ",".join("?" * len(ids))
        known = {r[0] for r in conn.execute(f"SELECT id FROM groups WHERE id IN ({marks})", ids)}
        if set(ids) - known:
            raise TemplateError("選んだグループがありません (no such group)", field="groups")
    return (priority, json.dumps(choices, ensure_ascii=False) if choices else None,
            json.dumps(ids) if ids else None)


def list_templates(db: sqlite_utils.Database) -> list[Template]:
    rows = db.execute("SELECT * FROM templates ORDER BY name").fetchall()
    return [_row(r) for r in rows]


def get_template(db: sqlite_utils.Database, template_id: int) -> Template | None:
    row = db.execute("SELECT * FROM templates WHERE id = ?", [template_id]).fetchone()
    return _row(row) if row else None


def get_template_by_name(db: sqlite_utils.Database, name: str) -> Template | None:
    row = db.execute("SELECT * FROM templates WHERE name = ?", [name.strip()]).fetchone()
    return _row(row) if row else None


def _name_taken(conn: sqlite3.Connection, name: str, except_id: int | None = None) -> bool:
    row = conn.execute("SELECT id FROM templates WHERE name = ?", [name]).fetchone()
    return row is not None and row["id"] != except_id


def create_template(db: sqlite_utils.Database, name: str, text: str, *, actor: str,
                    clinic: str, remote_addr: str | None = None, priority: str = "routine",
                    choices: list[str] | tuple[str, ...] = (),
                    group_ids: list[int] | tuple[int, ...] = ()) -> Template:
    """Save a new template; *clinic* fills {clinic} for the length check."""
    name, text = validate(name, text, clinic=clinic)
    with write(db) as conn:
        if _name_taken(conn, name):
            raise TemplateError(f"「{name}」という名前のテンプレートは既にあります "
                                "(a template with this name exists)", field="name")
        stored = _defaults(conn, priority, choices, group_ids)
        at = now()
        cursor = conn.execute(
            "INSERT INTO templates (name, text, created_at, updated_at, priority, choices, "
            "group_ids) VALUES (?, ?, ?, ?, ?, ?, ?)", [name, text, at, at, *stored])
        template_id = cursor.lastrowid
        audit.record(conn, actor, "template_create", remote_addr, template_id=template_id,
                     name=name)
    return get_template(db, template_id)


def update_template(db: sqlite_utils.Database, template_id: int, *, actor: str, clinic: str,
                    name: str | None = None, text: str | None = None,
                    remote_addr: str | None = None, priority: str | None = None,
                    choices: list[str] | tuple[str, ...] | None = None,
                    group_ids: list[int] | tuple[int, ...] | None = None) -> Template:
    """Change a template; what is not given (None) stays as it was."""
    current = get_template(db, template_id)
    if current is None:
        raise TemplateError(f"no template with id {template_id}")
    name, text = validate(current.name if name is None else name,
                          current.text if text is None else text, clinic=clinic)
    with write(db) as conn:
        if _name_taken(conn, name, except_id=template_id):
            raise TemplateError(f"「{name}」という名前のテンプレートは既にあります "
                                "(a template with this name exists)", field="name")
        for schedule in conn.execute("SELECT name FROM schedules WHERE template_id = ?",
                                     [template_id]):
            # A recurring schedule sends this text unattended: it must still be sendable.
            check_text(text, clinic=clinic, supplied=SCHEDULE_SUPPLIES,
                       who=f"定期送信「{schedule['name']}」", length=False)
        stored = _defaults(conn, current.priority if priority is None else priority,
                           current.choices if choices is None else choices,
                           current.group_ids if group_ids is None else group_ids)
        changed = conn.execute(
            "UPDATE templates SET name = ?, text = ?, updated_at = ?, priority = ?, choices = ?, "
            "group_ids = ? WHERE id = ?", [name, text, now(), *stored, template_id]).rowcount
        if not changed:
            raise TemplateError(f"no template with id {template_id}")
        audit.record(conn, actor, "template_update", remote_addr, template_id=template_id,
                     name=name)
    return get_template(db, template_id)


def delete_template(db: sqlite_utils.Database, template_id: int, *, actor: str,
                    remote_addr: str | None = None) -> None:
    """Delete a template; broadcasts keep their own copy of the text they sent."""
    try:
        with write(db) as conn:
            row = conn.execute("SELECT name FROM templates WHERE id = ?",
                               [template_id]).fetchone()
            if row is None:
                raise TemplateError(f"no template with id {template_id}")
            conn.execute("DELETE FROM templates WHERE id = ?", [template_id])
            audit.record(conn, actor, "template_delete", remote_addr,
                         template_id=template_id, name=row["name"])
    except sqlite3.IntegrityError:
        raise TemplateError("このテンプレートは定期送信で使われているため削除できません "
                            "(a schedule uses this template; change the schedule first)"
                            ) from None
