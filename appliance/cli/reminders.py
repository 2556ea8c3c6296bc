"""`tsunagu reminders …`: personal reminders (appointments, blood tests) from a shell."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import wording
from .common import cli_actor, config_option, field_errors, language, load_config_and_db, speak


def _errors(f):
    from ..reminders import ReminderError
    return field_errors(ReminderError)(f)


@click.group("reminders")
def reminders_group() -> None:
    """Personal reminders: kinds (rules), the appointments file, what was sent or missed."""


@reminders_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and show what would change.")
@config_option
@_errors
def import_command(file: Path, dry_run: bool) -> None:
    """Import appointments from a CSV FILE (UTF-8 or Shift_JIS/CP932), all or nothing.

    Columns: 患者ID and/or 携帯電話, 種類, 予約日 + 時刻 (or 予約日時); optional 予約ID,
    状態 (キャンセル withdraws), 氏名. Any row with a problem refuses the whole file.
    """
    from .. import reminders_csv
    from ..db import now
    config, db = load_config_and_db()
    data = file.read_bytes()
    try:
        if dry_run:
            plan = reminders_csv.preview(db, config, data, now=now())
            if plan.error_count:
                raise reminders_csv.ReminderImportError(plan.problems, plan)
        else:
            plan = reminders_csv.import_reminders(db, config, data, actor=cli_actor(),
                                                  now=now(), filename=file.name).preview
    except reminders_csv.ReminderImportError as exc:
        for problem in exc.problems:
            click.echo(problem.message(config.language), err=True)
        raise click.ClickException(speak(
            f"{len(exc.problems)}件の問題があるため、何も取り込んでいません",
            f"nothing imported: {len(exc.problems)} problem(s) listed above")) from None
    lang = language()
    for row in plan.rows:
        for warning in row.warnings:
            shown = wording.in_language(warning, lang)
            click.echo(speak(f"{row.row}行目：{shown}", f"row {row.row}: {shown}"))
    counts = speak("、", ", ").join(
        f"{wording.word(wording.REMINDER_IMPORT_ACTIONS, action, lang)} "
        f"{plan.count(action)}{speak('件', '')}"
        for action in ("new", "changed", "withdraw", "unchanged", "past"))
    if lang == "en":
        verb = "would import (--dry-run: nothing written)" if dry_run else "imported"
    else:
        verb = "取り込み予定（--dry-run：書き込みなし）" if dry_run else "取り込みました"
    click.echo(f"{verb}{speak('：', ': ')}{counts}")


@reminders_group.command("list")
@click.option("--missed", is_flag=True, help="Only those that could not go in time or failed.")
@config_option
@_errors
def list_command(missed: bool) -> None:
    """Reminders by appointment time: state, planned send time, the reply."""
    from .. import reminders
    from ..db import now
    config, db = load_config_and_db()
    states = ("missed", "failed") if missed else None
    fmt = "%m-%d %H:%M"
    listed = reminders.listing(db.conn, config, now(), states=states)
    if not listed:
        click.echo(speak("お知らせはありません。", "No reminders."), err=True)
    for r in listed:
        at = dt.datetime.fromtimestamp(r["appointment_at"], config.zone).strftime(fmt)
        planned = (dt.datetime.fromtimestamp(r["planned_at"], config.zone).strftime(fmt)
                   if r["planned_at"] else "")
        reply = r["choice_text"] or r["reply_text"] or ""
        lang = config.language
        state = wording.word(wording.REMINDER_STATES, r["state"], lang)
        if r["reason"]:
            state += f" ({wording.word(wording.REMINDER_REASONS, r['reason'], lang)})"
        click.echo(f"#{r['id']}\t{at}\t{r['kind_name']}\t{r['contact_name']}\t{state}"
                   f"\t{planned}\t{reply}")


@reminders_group.command("kinds")
@config_option
@_errors
def kinds_command() -> None:
    """The kinds and their rules."""
    from .. import reminders
    _, db = load_config_and_db()
    kinds = reminders.kinds(db.conn)
    if not kinds:
        click.echo(speak("お知らせの種類はまだありません（tsunagu reminders kind-add で追加）",
                         "no reminder kinds yet (tsunagu reminders kind-add adds one)"), err=True)
    for k in kinds:
        if k.days_before is not None:
            when = speak(f"{k.days_before}日前の{k.send_time:%H:%M}",
                         f"{k.days_before} day(s) before at {k.send_time:%H:%M}")
        else:
            when = speak(f"{k.hours_before:g}時間前", f"{k.hours_before:g} h before")
        if k.quiet_start:
            hours = f"{k.quiet_start:%H:%M}-{k.quiet_end:%H:%M}"
            quiet = speak(f"送信しない時間帯 {hours}", f"quiet {hours}")
        else:
            quiet = speak("送信しない時間帯なし", "no quiet hours")
        latest = speak(f"予約の{k.latest_minutes}分前まで",
                       f"latest {k.latest_minutes} min before")
        priority = wording.word(wording.PRIORITIES, k.priority, language())
        state = "" if k.enabled else "\t" + speak("停止中", "disabled")
        click.echo(f"{k.name}\t{when}\t{quiet}\t{latest}\t{priority}\t"
                   f"{' / '.join(k.choices)}{state}")


@reminders_group.command("kind-add")
@click.argument("name")
@click.option("--text", help="The message: {name}, {date}, {time}, {original_time}…")
@click.option("--template", "template_name", help="A saved template's name instead.")
@click.option("--changed-text", help="Sent instead when an appointment already announced moved.")
@click.option("--days-before", type=int, help="Send this many days before…")
@click.option("--at", "send_time", help="…at this time (HH:MM).")
@click.option("--hours-before", type=float, help="Or this many hours before.")
@click.option("--quiet", help="No SMS in these hours, e.g. 21:00-08:00.")
@click.option("--latest", "latest_minutes", type=int, default=60, show_default=True,
              help="Not later than this many minutes before the appointment.")
@click.option("--choices", help="Reply choices, e.g. 'はい / 変更したい'.")
@click.option("--priority", type=click.Choice(["routine", "emergency"]), default="routine",
              help="Emergency broadcasts go before routine ones.")
@config_option
@_errors
def kind_add_command(name, text, template_name, changed_text, days_before, send_time,
                     hours_before, quiet, latest_minutes, choices, priority) -> None:
    """Add a reminder kind called NAME (透析予約, 採血…)."""
    from .. import reminders, templates
    from ..db import now, write
    config, db = load_config_and_db()
    template_id = None
    if template_name:
        template = templates.get_template_by_name(db, template_name)
        if template is None:
            raise click.BadParameter(speak(f"「{template_name}」という名前の定型文はありません",
                                           f"no template named {template_name!r}"),
                                     param_hint="--template")
        template_id = template.id
    quiet_start, _sep, quiet_end = (quiet or "").partition("-")
    with write(db) as conn:
        reminders.save_kind(conn, config, name=name, text=text, template_id=template_id,
                            changed_text=changed_text, days_before=days_before,
                            send_time=send_time, hours_before=hours_before,
                            quiet_start=quiet_start or None, quiet_end=quiet_end or None,
                            latest_minutes=latest_minutes, choices=choices, priority=priority,
                            actor=cli_actor(), now=now())
    click.echo(speak(f"お知らせの種類「{name}」を追加しました", f"reminder kind {name} added"))
