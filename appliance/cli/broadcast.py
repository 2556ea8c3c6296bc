"""`tsunagu broadcast send|show|cancel|retry|resend|list` and `tsunagu inbox`.

They write to and read from the database only; the daemon does the sending.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

import click

from .. import doorbell, wording
from .common import (cli_actor, config_option, error_text, friendly_errors, load_config_and_db,
                     say, speak)


def _errors(f):
    from ..broadcasts import BroadcastError

    @friendly_errors
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except BroadcastError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise click.ClickException(f"{where}{error_text(exc)}") from None
    wrapper.__name__, wrapper.__doc__ = f.__name__, f.__doc__
    return wrapper


@click.group("broadcast")
def broadcast_group() -> None:
    """Send a message to many people, and follow how it went."""


@broadcast_group.command("send")
@config_option
@click.option("--group", "groups", multiple=True, help="A group name (repeat for more).")
@click.option("--all", "everyone", is_flag=True, help="Every active contact.")
@click.option("--text", help="The message ({name}, {clinic}… are filled in per person).")
@click.option("--template", "template_name", help="A saved template's name.")
@click.option("--title", default="", help="A title for the history (default: the first line).")
@click.option("--priority", type=click.Choice(["emergency", "routine"]), default="routine",
              show_default=True, help="Emergency broadcasts go before routine ones.")
@click.option("--drill", is_flag=True, help="Only the test group receives it.")
@click.option("--choices", help='Reply choices, e.g. "来院できる / 来院できない / 連絡がほしい".')
@click.option("--date", "date_value", help="Value for {date}.")
@click.option("--time", "time_value", help="Value for {time}.")
@click.option("--original-time", help="Value for {original_time}.")
@click.option("--at", "at", help="Send later: YYYY-MM-DD HH:MM in the clinic's timezone.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_errors
def send(groups, everyone, text, template_name, title, priority, drill, choices, date_value,
         time_value, original_time, at, yes) -> None:
    """Queue a broadcast (the daemon sends it). Shows the plan and asks first."""
    from .. import broadcasts, templates
    from ..db import now as now_
    from ..db import write
    config, db = load_config_and_db()
    if bool(text) == bool(template_name):
        raise click.UsageError(speak("--text か --template のどちらか一方を指定してください",
                                     "give exactly one of --text or --template"))
    if not (groups or everyone or drill):
        raise click.UsageError(speak("送り先を --group グループ名（くり返せます）、--all か "
                                     "--drill で指定してください",
                                     "give --group NAME (repeatable), --all or --drill"))
    template_id = None
    if template_name:
        template = templates.get_template_by_name(db, template_name)
        if template is None:
            raise click.BadParameter(speak(f"「{template_name}」というテンプレートはありません",
                                           f"no template named {template_name!r}"),
                                     param_hint="--template")
        text, template_id = template.text, template.id
    group_ids = []
    for name in groups:
        row = db.conn.execute("SELECT id FROM groups WHERE name = ?", [name]).fetchone()
        if row is None:
            raise click.BadParameter(speak(f"「{name}」というグループはありません",
                                           f"no group named {name!r}"), param_hint="--group")
        group_ids.append(row[0])
    values = {k: v for k, v in (("date", date_value), ("time", time_value),
                                ("original_time", original_time)) if v}
    now = now_()
    scheduled_at = _parse_at(at, config.zone, now) if at else None
    plan = broadcasts.plan(db.conn, config, text=text, group_ids=group_ids, everyone=everyone,
                           priority=priority, drill=drill, choices=choices, values=values,
                           now=now)
    lang = config.language
    budget_left = ", ".join(f"{k} {v}" for k, v in plan.budget.items())
    if now < plan.budget_until < float("inf"):
        # Held back by the daily limit: when the last goes, not ~2,000 minutes.
        at = broadcasts.clock_time(plan.budget_until, config)
        took = (f"最後の方へは {at} ごろ（SIMの1日の上限のため）",
                f"the last at about {at} (the SIMs' daily limit)")
    else:
        took = (f"約{plan.seconds / 60:.1f}分", f"about {plan.seconds / 60:.1f} minutes")
    click.echo(say(lang, f"{plan.people}名、SMS {plan.parts}通、送信にかかる時間 {took[0]}。"
                         f"本日の残り: {budget_left}",
                   f"{plan.people} people, {plan.parts} SMS parts, {took[1]} at the SIMs' "
                   f"pace; budget left today: {budget_left}"))
    for warning in broadcasts.note_texts(plan, lang, config):
        click.echo(f"{say(lang, '注意', 'warning')}: {warning}")
    click.echo(say(lang, "--- 1人目への本文 ---", "--- first message ---") + "\n"
               + plan.recipients[0].text + "\n---")
    if not yes:
        click.confirm(say(lang, "送信しますか？", "Send it?"), abort=True)
    with write(db) as conn:
        broadcast_id = broadcasts.create(conn, plan, title=title, actor=cli_actor(), now=now,
                                         template_id=template_id, scheduled_at=scheduled_at,
                                         request_key=str(uuid.uuid4()))
    doorbell.ring(config.database)
    shown = wording.state("scheduled" if scheduled_at else "queued", lang)
    click.echo(say(lang, f"一斉送信 #{broadcast_id}: {shown}",
                   f"broadcast {broadcast_id} {shown.lower()}"))


def _parse_at(text: str, zone, now: float) -> float:
    try:
        moment = dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise click.BadParameter(speak("2026-12-01 17:00 のように YYYY-MM-DD HH:MM で書いて"
                                       "ください", "use YYYY-MM-DD HH:MM, e.g. 2026-12-01 17:00"),
                                 param_hint="--at") from None
    if moment.timestamp() <= now:
        raise click.BadParameter(speak(f"{text} は過ぎています", f"{text} is in the past"),
                                 param_hint="--at")
    return moment.timestamp()


@broadcast_group.command("show")
@config_option
@click.argument("broadcast_id", type=int)
@click.option("--json", "as_json", is_flag=True,
              help="As JSON, for a script: the counts and every recipient.")
@_errors
def show(broadcast_id: int, as_json: bool) -> None:
    """Counts per state and every recipient of broadcast BROADCAST_ID."""
    from .. import broadcasts, budget
    from ..db import now
    config, db = load_config_and_db()
    lang = config.language
    held = budget.held_back(db.conn, config, now(), broadcast_id=broadcast_id)
    summary = broadcasts.summary(db.conn, broadcast_id, held=held)
    people = broadcasts.recipients(db.conn, broadcast_id, held=held)
    if as_json:
        summary["recipients"] = [{**{k: r[k] for k in ("name", "phone", "state", "parts_count",
                                                        "attempts", "modem", "last_error",
                                                        "reason", "acknowledged_at", "choice",
                                                        "budget_until")},
                                  "reason_text": wording.recipient_reason(
                                      r["reason"], r["last_error"], lang) or None}
                                 for r in people]
        # Infinity is not JSON: a message no SIM's limit can take has no time (null).
        for item in (summary, *summary["recipients"]):
            if item["budget_until"] == float("inf"):
                item["budget_until"] = None
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    drill = say(lang, "、訓練", ", drill") if summary["drill"] else ""
    click.echo(f"#{summary['id']} {summary['title']} — {wording.state(summary['state'], lang)} "
               f"({wording.word(wording.PRIORITIES, summary['priority'], lang)}{drill})")
    acknowledged = wording.word(wording.COUNTS, "acknowledged", lang)
    click.echo("  " + "  ".join(f"{wording.state(k, lang)} {v}"
                                for k, v in summary["counts"].items() if v)
               + f"  {acknowledged} {summary['acknowledged']}/{summary['total']}")
    for choice, n in summary["tally"].items():
        click.echo(f"  {choice}: {n}")
    if summary["other_replies"]:
        click.echo(f"  {say(lang, 'その他', 'other')}: {len(summary['other_replies'])}")
    for r in people:
        ack = " ✓" if r["acknowledged_at"] else ""
        why = wording.recipient_reason(r["reason"], r["last_error"], lang) \
            if r["state"] != "delivered" else ""
        if r["state"] == "budget_wait":
            why = _budget_note(r["budget_until"], config)
        click.echo(f"  {wording.state(r['state'], lang):<10} {r['phone']:<14} {r['name']}{ack}"
                   + (f"  ({why})" if why else ""))


@broadcast_group.command("cancel")
@config_option
@click.argument("broadcast_id", type=int)
@_errors
def cancel(broadcast_id: int) -> None:
    """Stop BROADCAST_ID: nobody not yet sent to receives it."""
    from .. import broadcasts
    from ..db import now, write
    config, db = load_config_and_db()
    with write(db) as conn:
        count = broadcasts.cancel(conn, broadcast_id, actor=cli_actor(), now=now())
    click.echo(say(config.language, f"一斉送信 #{broadcast_id} を中止しました。{count}件は送信されません。",
                   f"broadcast {broadcast_id} cancelled; {count} not sent"))


@broadcast_group.command("retry")
@config_option
@click.argument("broadcast_id", type=int)
@_errors
def retry(broadcast_id: int) -> None:
    """Send again to the failed and uncertain recipients of BROADCAST_ID."""
    from .. import broadcasts
    from ..db import now, write
    config, db = load_config_and_db()
    with write(db) as conn:
        count = broadcasts.retry_failed(conn, broadcast_id, actor=cli_actor(), now=now())
    doorbell.ring(config.database)
    click.echo(say(config.language, f"{count}件を再送信します",
                   f"{count} recipient(s) queued again"))


@broadcast_group.command("resend")
@config_option
@click.argument("broadcast_id", type=int)
@_errors
def resend(broadcast_id: int) -> None:
    """A new broadcast to everyone who has not replied to BROADCAST_ID."""
    from .. import broadcasts
    from ..db import now, write
    config, db = load_config_and_db()
    with write(db) as conn:
        new_id = broadcasts.resend_unacknowledged(conn, broadcast_id, actor=cli_actor(),
                                                  now=now())
    doorbell.ring(config.database)
    lang = config.language
    click.echo(say(lang, "全員から返信がありました", "everyone has replied") if new_id is None
               else say(lang, f"一斉送信 #{new_id}: {wording.state('queued', lang)}",
                        f"broadcast {new_id} queued"))


@broadcast_group.command("list")
@config_option
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@_errors
def list_(limit: int) -> None:
    """Recent broadcasts, newest first."""
    from .. import broadcasts
    config, db = load_config_and_db()
    lang = config.language
    words = {key: wording.word(wording.COUNTS, key, lang) for key in ("people", "acknowledged")}
    for b in broadcasts.history(db.conn, limit=limit):
        click.echo(f"#{b['id']:<4} {wording.state(b['state'], lang):<9} "
                   f"{words['people']} {b['people'] or 0:>4}  "
                   f"{wording.state('delivered', lang)} {b['delivered'] or 0}  "
                   f"{wording.state('failed', lang)} {b['failed'] or 0}  "
                   f"{words['acknowledged']} {b['acknowledged'] or 0}  {b['title']}")


@click.command("inbox")
@config_option
@click.option("--unmatched", is_flag=True, help="Only messages matched to no broadcast.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@_errors
def inbox(unmatched: bool, limit: int) -> None:
    """Replies and other messages that reached the SIMs, newest first."""
    from .. import replies
    config, db = load_config_and_db()
    for m in replies.inbox(db.conn, unmatched_only=unmatched, limit=limit):
        when = dt.datetime.fromtimestamp(m["received_at"], config.zone).strftime("%m-%d %H:%M")
        who = m["contact_name"] or m["recipient_name"] or "?"
        about = (f" → #{m['broadcast_id']}" if m["broadcast_id"]
                 else say(config.language, "（該当なし）", " (unmatched)"))
        choice = f" [{say(config.language, '選択肢', 'choice')} {m['choice']}]" if m["choice"] else ""
        click.echo(f"{when} {m['number']} {who}{about}{choice}: {m['text']}")


def _budget_note(until: float, config) -> str:
    import datetime as dt
    if until == float("inf"):
        return ("どのSIMの1日の上限にも収まりません" if config.language == "ja"
                else "longer than any SIM's daily limit")
    at = dt.datetime.fromtimestamp(until, config.zone).strftime("%m/%d %H:%M")
    return f"上限待ち: {at} から" if config.language == "ja" else f"daily limit: from {at}"
