"""`tsunagu contacts import|export|list`: the roster from and to CSV files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..phone import display_number
from .common import (cli_actor, config_option, friendly_errors, load_config_and_db,
                     speak, terminal_safe)


@click.group("contacts")
def contacts_group() -> None:
    """Contacts (patients and staff phones): import, export, list, whether to ring."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True,
              help="Check every row and show what would change; write nothing.")
@config_option
@friendly_errors
def import_command(file: Path, dry_run: bool) -> None:
    """Import contacts from a CSV FILE (UTF-8, UTF-8 with BOM or Shift_JIS/CP932).

    All or nothing: when any row has a problem, every problem is listed by row number
    (the header is row 1), nothing is imported and the exit status is 1. Rows match
    existing contacts by 患者ID, else by number, and update them; see
    `appliance/contacts.py` for the rules.
    """
    from .. import contacts
    config, db = load_config_and_db()
    lang = config.language
    try:
        result = contacts.import_contacts(db, file.read_bytes(), actor=cli_actor(),
                                          dry_run=dry_run, filename=file.name)
    except contacts.ContactImportError as exc:
        _show_problems(exc, lang)
        raise click.ClickException(
            f"{len(exc.problems)}件の問題があるため、何も取り込んでいません"
            if lang == "ja" else
            f"nothing imported: {len(exc.problems)} problem(s) listed above") from None
    plan = result.preview
    _show_columns(plan, lang)
    for row in plan.rows:
        if row.action == "update":
            changes = "; ".join(f"{_label(key)}: {_value(before)} → {_value(row.new[key])}"
                                for key, before in row.old.items())
            name = row.fields["name"]
            click.echo(terminal_safe(speak(f"  {row.row}行目：{name} を更新（{changes}）",
                                           f"  row {row.row}: update {name} ({changes})")))
    groups = ", ".join(result.groups_created) or "-"
    if lang == "en":
        verb = "would import" if dry_run else "imported"
        summary = (f"{verb}: new {result.created}, updated {result.updated}, "
                   f"unchanged {result.unchanged}; groups created: {groups}")
    else:
        verb = "取り込み予定（--dry-run：書き込みなし）" if dry_run else "取り込みました"
        summary = (f"{verb}：新規 {result.created}件、更新 {result.updated}件、"
                   f"変更なし {result.unchanged}件。新しく作ったグループ：{groups}")
    click.echo(terminal_safe(summary))


def _show_problems(exc, lang: str) -> None:
    """One line per problem: row, column, the cell as written, and the reason."""
    if exc.preview is None:  # the file as a whole
        for problem in exc.problems:
            click.echo(terminal_safe(problem.message(lang)), err=True)
        return
    columns = exc.preview.columns
    for row in exc.preview.rows:
        for problem in row.problems:
            header = columns.get(problem.field, problem.field)
            value = row.fields.get(problem.field)
            if problem.field == "phone" and value and value.startswith("+81"):
                value = display_number(value)
            shown = speak(f" 「{value}」", f' "{value}"') if isinstance(value, str) and value else ""
            click.echo(terminal_safe(f"{problem.message(lang)}  [{header}{shown}]"), err=True)


def _label(field: str) -> str:
    """A contact field's name as staff call it, in this command's language."""
    from ..contacts import LABELS
    ja, en = LABELS.get(field, (field, field))
    return speak(ja, en)


def _show_columns(plan, lang: str) -> None:
    mapped = ", ".join(f"{header}→{_label(field)}" for field, header in plan.columns.items())
    click.echo(terminal_safe(speak(f"文字コード {plan.encoding}。列：{mapped}",
                                   f"encoding {plan.encoding}; columns: {mapped}")))
    if plan.ignored_columns:
        label = "使わない列" if lang == "ja" else "ignored columns"
        click.echo(terminal_safe(f"{label}{speak('：', ': ')}{', '.join(plan.ignored_columns)}"))


def _value(value) -> str:
    if isinstance(value, bool):     # 自動電話なし (no_ring)
        return speak("はい", "yes") if value else "-"
    if isinstance(value, list):
        return "・".join(value) or "-"
    return "-" if value in (None, "") else str(value)


@contacts_group.command("export")
@click.option("--encoding", type=click.Choice(["cp932", "utf-8"]), default="cp932",
              show_default=True,
              help="cp932 (Shift_JIS, what Excel in Japan expects) or utf-8 (with a BOM; "
                   "needed for names with characters such as 𠮷).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (created readable by its owner only); default stdout "
                   "(shown as text when stdout is a terminal).")
@config_option
@friendly_errors
def export_command(encoding: str, output: Path | None) -> None:
    """Export the active contacts as CSV that `contacts import` reads back."""
    from .. import contacts
    _, db = load_config_and_db()
    data = contacts.export_contacts(db, encoding, actor=cli_actor())
    if output is None and sys.stdout.isatty():
        # A person reading a terminal: CP932 bytes would show as mojibake there.
        click.echo(data.decode(encoding).lstrip("\ufeff"), nl=False)
        return
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    # Patients' names and numbers: not world-readable.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    click.echo(speak(f"{output} に書き出しました", f"wrote {output}"), err=True)


@contacts_group.command("list")
@click.option("-s", "--search", "query", help="Name, kana or (part of) a number.")
@click.option("-g", "--group", "group_name", help="Only members of this group.")
@click.option("--all", "include_inactive", is_flag=True, help="Include deactivated contacts.")
@config_option
@friendly_errors
def list_command(query: str | None, group_name: str | None, include_inactive: bool) -> None:
    """List contacts: ID, patient ID, name, kana, number, groups."""
    from .. import contacts
    _, db = load_config_and_db()
    group_id = None
    if group_name:
        group = contacts.get_group_by_name(db, group_name)
        if group is None:
            raise click.ClickException(speak(f"「{group_name}」という名前のグループはありません",
                                             f"no group named {group_name!r}"))
        group_id = group.id
    people = contacts.list_contacts(db, query, group_id=group_id,
                                    include_inactive=include_inactive)
    for c in people:
        state = ("" if c.active else speak(" [送信停止中]", " [inactive]")) + \
            (speak(" [電話しない]", " [no ring]") if c.no_ring else "")
        cells = [c.id, c.patient_id or "-", c.name, c.kana, c.display_phone,
                 "・".join(c.groups) + state]
        click.echo("\t".join(terminal_safe(cell) for cell in cells))
    click.echo(speak(f"{len(people)}件", f"{len(people)} contact(s)"), err=True)


@contacts_group.command("ring")
@click.argument("number")
@click.argument("value", type=click.Choice(["on", "off"]))
@config_option
@friendly_errors
def ring_command(number: str, value: str) -> None:
    """Whether the contact with NUMBER may be rung when silent after a broadcast ("off": the
    person asked not to be called; 電話で呼ばない)."""
    from .. import contacts
    _, db = load_config_and_db()
    found = contacts.find_by_phone(db, number)
    if found is None:
        raise click.ClickException(speak(f"{number} の連絡先はありません",
                                         f"no contact with the number {number}"))
    changed = contacts.update_contact(db, found.id, actor=cli_actor(), no_ring=value == "off")
    click.echo(f"{terminal_safe(changed.name)}: " + (
        speak("電話を鳴らさない", "never rung") if changed.no_ring
        else speak("返信がなければ電話を鳴らす", "rung when silent")))
