"""`tsunagu emergency-codes new|status`: the sealed break-glass codes (appliance.emergency)."""
from __future__ import annotations

import click

from .common import cli_actor, config_option, friendly_errors, load_config_and_db, speak


@click.group("emergency-codes")
def emergency_group() -> None:
    """Sealed one-time codes for logging in during an emergency when nothing else works."""


@emergency_group.command("new")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 20),
              help="How many codes to print.")
@config_option
@friendly_errors
def new_command(count: int) -> None:
    """Print new codes to seal in an envelope; unused older codes stop working."""
    from .. import emergency
    from ..db import now
    _, db = load_config_and_db()
    codes = emergency.new_codes(db, count=count, actor=cli_actor(), now=now())
    click.echo(speak("緊急ログイン用コード（各コードは1回だけ使えます）：",
                     "Emergency login codes (each works once):"))
    for code in codes:
        click.echo(f"  {code}")
    click.echo(speak("印刷して封筒に入れ、封をして装置のそばに保管してください。使ったら新しいコードを"
                     "作ってください。",
                     "Print them, seal them in an envelope kept by the appliance, and make new "
                     "ones after a code is used."))


@emergency_group.command("status")
@config_option
@friendly_errors
def status_command() -> None:
    """How many sealed codes are left, and when one was last used."""
    import datetime as dt

    from .. import emergency
    config, db = load_config_and_db()
    click.echo(speak(f"未使用のコード：{emergency.unused(db)}個",
                     f"unused codes: {emergency.unused(db)}"))
    for use in emergency.uses(db, 0)[:5]:
        when = dt.datetime.fromtimestamp(use["used_at"], config.zone)
        click.echo(speak(f"{when:%Y-%m-%d %H:%M} に {use['used_from']} から使用",
                         f"used {when:%Y-%m-%d %H:%M} from {use['used_from']}"))
