"""`tsunagu api-token …`: tokens and webhooks for the clinic's other systems (/api/v1)."""
from __future__ import annotations

import datetime as dt

import click

from .. import wording
from .common import cli_actor, config_option, field_errors, language, load_config_and_db, speak


def _errors(f):
    from ..api_tokens import TokenError
    from ..webhooks import WebhookError
    return field_errors(TokenError, WebhookError)(f)


def _token(db, name: str):
    from .. import api_tokens
    token = api_tokens.by_name(db.conn, name)
    if token is None:
        raise click.ClickException(speak(
            f"「{name}」という名前のAPIトークンはありません（`tsunagu api-token list` で一覧）",
            f"no API token named {name!r} (see `tsunagu api-token list`)"))
    return token


@click.group("api-token")
def api_token_group() -> None:
    """API tokens for the clinic's other systems, and their webhooks (README, Integrating)."""


@api_token_group.command("add")
@click.argument("name")
@click.option("--scope", "scopes", required=True,
              help="Comma-separated: send, read, contacts, reminders.")
@click.option("--rate", "rate", type=int, help="Requests a minute (default: [api] "
              "rate_per_minute).")
@config_option
@_errors
def add_command(name: str, scopes: str, rate: int | None) -> None:
    """Make a token called NAME (the system that uses it); it is printed once."""
    from .. import api_tokens
    from ..db import now, write
    config, db = load_config_and_db()
    with write(db) as conn:
        token, secret = api_tokens.create(conn, name, scopes, actor=cli_actor(), now=now(),
                                          rate_per_minute=rate or config.api.rate_per_minute)
    scopes = ", ".join(token.scopes)
    click.echo(speak(f"{token.name} のトークン（{scopes}）：{secret}",
                     f"token for {token.name} ({scopes}): {secret}"))
    click.echo(speak("（表示はこの一度だけです。相手のシステムの設定に入れてください）",
                     "(shown only now: put it in the other system's settings)"), err=True)


@api_token_group.command("list")
@config_option
@_errors
def list_command() -> None:
    """Every token: name, scopes, limit, last use, revoked or not, its webhook."""
    from .. import api_tokens, webhooks
    config, db = load_config_and_db()
    tokens = api_tokens.listing(db.conn)
    if not tokens:
        click.echo(speak("APIトークンはまだありません（tsunagu api-token add で作成）",
                         "no API tokens yet (tsunagu api-token add makes one)"), err=True)
    for t in tokens:
        if t.last_used_at:
            last = dt.datetime.fromtimestamp(t.last_used_at, config.zone).strftime(
                "%Y-%m-%d %H:%M")
            used = speak(f"最終使用 {last}", f"last used {last}")
        else:
            used = speak("未使用", "never used")
        state = speak("有効", "active") if t.active else speak("無効", "revoked")
        hook = webhooks.for_token(db.conn, t.id)
        shown = f"\tWebhook {hook.url} ({','.join(hook.events)})" if hook else ""
        rate = speak(f"1分{t.rate_per_minute}回", f"{t.rate_per_minute}/min")
        click.echo(f"{t.name}\t{t.prefix}…\t{','.join(t.scopes)}\t{rate}\t{state}\t{used}{shown}")


@api_token_group.command("revoke")
@click.argument("name")
@config_option
@_errors
def revoke_command(name: str) -> None:
    """Revoke NAME's token: it stops working at once, and its webhook with it."""
    from .. import api_tokens
    from ..db import now, write
    _, db = load_config_and_db()
    token = _token(db, name)
    with write(db) as conn:
        api_tokens.revoke(conn, token.id, actor=cli_actor(), now=now())
    click.echo(speak(f"{token.name} のトークンを無効にしました", f"revoked {token.name}"))


@api_token_group.command("webhook")
@click.argument("name")
@click.option("--url", required=True, help="Where events are POSTed (http:// or https://).")
@click.option("--events", default="all", show_default=True,
              help="Comma-separated event names, or 'all'.")
@click.option("--new-secret", is_flag=True, help="Make a new signing secret (printed once).")
@config_option
@_errors
def webhook_command(name: str, url: str, events: str, new_secret: bool) -> None:
    """Set NAME's webhook. Its signing secret is printed once: when the webhook is new, or
    with --new-secret."""
    from .. import webhooks
    from ..db import now, write
    _, db = load_config_and_db()
    token = _token(db, name)
    chosen = webhooks.EVENTS if events.strip() == "all" else events
    with write(db) as conn:
        hook, secret = webhooks.set_webhook(conn, token.id, url=url, events=chosen,
                                            actor=cli_actor(), now=now(), new_secret=new_secret)
    events_shown = ", ".join(hook.events)
    click.echo(speak(f"{token.name} のWebhook：{hook.url}（{events_shown}）",
                     f"webhook of {token.name}: {hook.url} ({events_shown})"))
    if secret:
        click.echo(speak(f"署名用の秘密鍵：{secret}", f"signing secret: {secret}"))
        click.echo(speak("（表示はこの一度だけです）", "(shown only now)"), err=True)


@api_token_group.command("deliveries")
@click.option("--failed", is_flag=True, help="Only those that failed.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@config_option
@_errors
def deliveries_command(failed: bool, limit: int) -> None:
    """Recent webhook deliveries, newest first."""
    from .. import webhooks
    config, db = load_config_and_db()
    listed = webhooks.deliveries(db.conn, state="failed" if failed else None, limit=limit)
    if not listed:
        click.echo(speak("送った通知はまだありません。", "Nothing sent yet."), err=True)
    for d in listed:
        at = dt.datetime.fromtimestamp(d["event_at"], config.zone).strftime("%m-%d %H:%M:%S")
        state = wording.word(wording.WEBHOOK_STATES, d["state"], language())
        tries = speak(f"{d['attempts']}回", f"tries {d['attempts']}")
        click.echo(f"#{d['id']}\t{at}\t{d['token_name']}\t{d['type']}\t{state}\t"
                   f"{tries}\t{d['last_error'] or ''}")


@api_token_group.command("resend")
@click.argument("delivery_ids", nargs=-1, type=int)
@click.option("--failed-of", "failed_of", help="Every failed delivery of this token's webhook.")
@config_option
@_errors
def resend_command(delivery_ids: tuple[int, ...], failed_of: str | None) -> None:
    """Send webhook deliveries again (by id, or all failed ones of a token)."""
    from .. import webhooks
    from ..db import now, write
    config, db = load_config_and_db()
    ids = list(delivery_ids)
    if failed_of:
        hook = webhooks.for_token(db.conn, _token(db, failed_of).id)
        if hook is None:
            raise click.ClickException(speak(f"{failed_of} にはWebhookがありません",
                                             f"{failed_of} has no webhook"))
        ids += webhooks.failed_ids(db.conn, hook.id)
    if not ids:
        raise click.UsageError(speak("送り直す通知の番号か --failed-of 名前 を指定してください",
                                     "give delivery ids or --failed-of NAME"))
    with write(db) as conn:
        count = webhooks.resend(conn, config, ids, actor=cli_actor(), now=now())
    click.echo(speak(f"{count}件をもう一度送ります", f"{count} delivery(ies) queued again"))
