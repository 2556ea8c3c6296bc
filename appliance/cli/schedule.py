"""`tsunagu schedule add|list|enable|disable|delete`: recurring broadcasts."""
from __future__ import annotations

import datetime as dt

import click

from .. import wording
from .common import cli_actor, config_option, field_errors, load_config_and_db, say


def _errors(f):
    from ..schedules import ScheduleError
    return field_errors(ScheduleError)(f)


@click.group("schedule")
def schedule_group() -> None:
    """Recurring broadcasts, e.g. every Monday 17:00 to 月水金 (clinic's timezone)."""


@schedule_group.command("add")
@config_option
@click.argument("name")
@click.option("--cron", required=True, help="minute hour day month day_of_week, e.g. '0 17 * * mon'.")
@click.option("--group", "groups", multiple=True, required=True, help="Group name (repeatable).")
@click.option("--text", help="The message.")
@click.option("--template", "template_name", help="A saved template's name.")
@click.option("--priority", type=click.Choice(["emergency", "routine"]), default="routine",
              help="Emergency broadcasts go before routine ones.")
@_errors
def add(name, cron, groups, text, template_name, priority) -> None:
    """Add a recurring broadcast called NAME."""
    from .. import schedules, templates
    from ..db import now, write
    config, db = load_config_and_db()
    template_id = None
    if template_name:
        template = templates.get_template_by_name(db, template_name)
        if template is None:
            raise click.BadParameter(f"no template named {template_name!r}", param_hint="--template")
        template_id = template.id
    with write(db) as conn:
        schedule_id = schedules.add(conn, config, name=name, cron=cron, groups=list(groups),
                                    text=text, template_id=template_id, priority=priority,
                                    actor=cli_actor(), now=now())
    click.echo(say(config.language, f"定期送信 #{schedule_id} を追加しました",
                   f"schedule {schedule_id} added"))


@schedule_group.command("list")
@config_option
@_errors
def list_() -> None:
    """Every schedule and its next run."""
    from .. import schedules
    from ..db import now
    config, db = load_config_and_db()
    lang = config.language
    for s in schedules.listing(db.conn, config, now()):
        if s["next_run_at"]:
            moment = dt.datetime.fromtimestamp(s["next_run_at"], config.zone)
            nxt = f"{moment:%Y-%m-%d}({wording.weekday_of(moment, lang)}) {moment:%H:%M}"
        else:
            nxt = say(lang, "停止中", "paused")
        click.echo(f"#{s['id']:<3} {wording.schedule_when(s['cron'], lang):<14} "
                   f"{say(lang, '次回', 'next')} {nxt}  {'、'.join(s['groups'])}  {s['name']}")


def _toggle(enabled: bool):
    @config_option
    @click.argument("schedule_id", type=int)
    @_errors
    def command(schedule_id: int) -> None:
        from .. import schedules
        from ..db import now, write
        config, db = load_config_and_db()
        with write(db) as conn:
            schedules.set_enabled(conn, schedule_id, enabled, actor=cli_actor(), now=now())
        click.echo(say(config.language,
                       f"定期送信 #{schedule_id} を{'再開' if enabled else '停止'}しました",
                       f"schedule {schedule_id} {'enabled' if enabled else 'disabled'}"))
    return command


schedule_group.command("enable", help="Enable SCHEDULE_ID (missed runs are not sent).")(_toggle(True))
schedule_group.command("disable", help="Disable SCHEDULE_ID.")(_toggle(False))


@schedule_group.command("delete")
@config_option
@click.argument("schedule_id", type=int)
@_errors
def delete(schedule_id: int) -> None:
    """Delete SCHEDULE_ID."""
    from .. import schedules
    from ..db import write
    config, db = load_config_and_db()
    with write(db) as conn:
        schedules.delete(conn, schedule_id, actor=cli_actor())
    click.echo(say(config.language, f"定期送信 #{schedule_id} を削除しました",
                   f"schedule {schedule_id} deleted"))
