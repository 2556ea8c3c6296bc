"""`tsunagu api-token …`: tokens and webhooks for the clinic's other systems (/api/v1)."""
from __future__ import annotations

import datetime as dt

import click

from .common import cli_actor, config_option, field_errors, load_config_and_db


def _errors(f):
    from ..api_tokens import TokenError
    from ..webhooks import WebhookError
    return field_errors(TokenError, WebhookError)(f)


def _token(db, name: str):
    from .. import api_tokens
    token = api_tokens.by_name(db.conn, name)
    if token is None:
        raise click.ClickException(f"no API token named {name!r} (see `tsunagu api-token list`)")
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
    click.echo(f"token for {token.name} ({', '.join(token.scopes)}): {secret}")
    click.echo("(shown only now: put it in the other system's settings; "
               "この画面でしか表示されません)", err=True)


@api_token_group.command("list")
@config_option
@_errors
def list_command() -> None:
    """Every token: name, scopes, limit, last use, revoked or not, its webhook."""
    from .. import api_tokens, webhooks
    config, db = load_config_and_db()
    for t in api_tokens.listing(db.conn):
        last = (dt.datetime.fromtimestamp(t.last_used_at, config.zone).strftime("%Y-%m-%d %H:%M")
                if t.last_used_at else "never")
        state = "revoked" if not t.active else "active"
        hook = webhooks.for_token(db.conn, t.id)
        shown = f"\twebhook {hook.url} ({','.join(hook.events)})" if hook else ""
        click.echo(f"{t.name}\t{t.prefix}…\t{','.join(t.scopes)}\t{t.rate_per_minute}/min\t"
                   f"{state}\tlast used {last}{shown}")


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
    click.echo(f"revoked {token.name}")


@api_token_group.command("webhook")
@click.argument("name")
@click.option("--url", required=True, help="Where events are POSTed (http:// or https://).")
@click.option("--events", default="all", show_default=True,
              help="Comma-separated event names, or 'all'.")
@click.option("--new-secret", is_flag=True, help="Make a new signing secret (printed once).")
@config_option
@_errors
def webhook_command(name: str, url: str, events: str, new_secret: bool) -> None:
    """Set NAME's webhook; a new one's signing secret is printed once."""
    from .. import webhooks
    from ..db import now, write
    _, db = load_config_and_db()
    token = _token(db, name)
    chosen = webhooks.EVENTS if events.strip() == "all" else events
    with write(db) as conn:
        hook, secret = webhooks.set_webhook(conn, token.id, url=url, events=chosen,
                                            actor=cli_actor(), now=now(), new_secret=new_secret)
    click.echo(f"webhook of {token.name}: {hook.url} ({', '.join(hook.events)})")
    if secret:
        click.echo(f"signing secret: {secret}")
        click.echo("(shown only now; この画面でしか表示されません)", err=True)


@api_token_group.command("deliveries")
@click.option("--failed", is_flag=True, help="Only those that failed.")
@click.option("--limit", default=50, show_default=True)
@config_option
@_errors
def deliveries_command(failed: bool, limit: int) -> None:
    """Recent webhook deliveries, newest first."""
    from .. import webhooks
    config, db = load_config_and_db()
    for d in webhooks.deliveries(db.conn, state="failed" if failed else None, limit=limit):
        at = dt.datetime.fromtimestamp(d["event_at"], config.zone).strftime("%m-%d %H:%M:%S")
        click.echo(f"#{d['id']}\t{at}\t{d['token_name']}\t{d['type']}\t{d['state']}\t"
                   f"tries {d['attempts']}\t{d['last_error'] or ''}")


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
            raise click.ClickException(f"{failed_of} has no webhook")
        ids += webhooks.failed_ids(db.conn, hook.id)
    if not ids:
        raise click.UsageError("give delivery ids or --failed-of NAME")
    with write(db) as conn:
        count = webhooks.resend(conn, config, ids, actor=cli_actor(), now=now())
    click.echo(f"{count} delivery(ies) queued again")
