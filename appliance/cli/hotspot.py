"""`tsunagu hotspot qr`: the sticker for the appliance's own Wi-Fi (appliance.hotspot_qr), read
from the NetworkManager profile that `scripts/install.sh --hotspot SSID` wrote."""
from __future__ import annotations

from pathlib import Path

import click

from ..hotspot import DEFAULT_PROFILE
from .common import config_option, load_config, say


@click.group("hotspot")
def hotspot_group() -> None:
    """The appliance's own Wi-Fi, for staff phones when the clinic LAN is down."""


@hotspot_group.command("qr")
@config_option
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path),
              envvar="TSUNAGU_HOTSPOT_PROFILE", show_default=True,
              default=DEFAULT_PROFILE,
              help="The hotspot's NetworkManager profile (written by install.sh --hotspot).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the sticker (both codes and their captions) to this .svg file "
                   "to print.")
def qr_command(profile: Path, output: Path | None) -> None:
    """Print the QR codes that join a phone to the hotspot and open the web UI on it."""
    from .. import hotspot as hotspot_mod
    from .. import hotspot_qr
    lang = load_config().language
    if output is not None and output.suffix.lower() != ".svg":
        raise click.BadParameter(say(lang, "ファイル名は .svg で終わるようにしてください（例: sticker.svg）。",
                                     "the file name must end in .svg (sticker.svg)."),
                                 param_hint="--output")
    try:
        hotspot = hotspot_mod.read(profile)
    except hotspot_mod.NoHotspot:
        raise click.ClickException(say(
            lang, f"Wi-Fi（ホットスポット）が設定されていません（{profile} がありません）。"
                  "sudo ./scripts/install.sh --hotspot ネットワーク名 で設定してから、もう一度実行してください。",
            f"no hotspot is set up ({profile} does not exist): run "
            "sudo ./scripts/install.sh --hotspot NETWORK-NAME, then this again.")) from None
    except PermissionError:
        raise click.ClickException(say(
            lang, f"{profile} を読めません（root だけが読めます）。sudo を付けて実行してください。",
            f"cannot read {profile} (root's alone): run this with sudo.")) from None
    except hotspot_mod.HotspotError as exc:
        raise click.ClickException(say(
            lang, f"Wi-Fi の設定ファイルを読めません: {exc}", f"cannot read the hotspot profile: {exc}")
        ) from None
    words = hotspot_qr.WORDS["en" if lang == "en" else "ja"]
    click.echo(words["title"])
    click.echo(f"{words['ssid']}: {hotspot.ssid}")
    click.echo(f"{words['passphrase']}: {hotspot.passphrase}")
    click.echo(f"\n{words['step1']}")
    click.echo(hotspot_qr.terminal(hotspot_qr.wifi_code(hotspot)), nl=False)
    click.echo(f"\n{words['step2']}: {hotspot.url}")
    click.echo(hotspot_qr.terminal(hotspot_qr.address_code(hotspot)), nl=False)
    click.echo(words["login"])
    click.echo(words["ca"].format(ca=hotspot_qr.ca_url(hotspot)))
    if output is not None:
        try:
            _write_private(output, hotspot_qr.sticker_svg(hotspot, lang))
        except OSError as exc:
            raise click.ClickException(say(lang, f"{output} に書き込めません: {exc.strerror}",
                                           f"cannot write {output}: {exc.strerror}")) from None
        click.echo(say(lang, f"\n印刷用のステッカーを {output} に書きました（ブラウザで開いて印刷し、装置に貼ってください）。",
                       f"\nWrote the sticker to {output} (open it in a browser, print it and "
                       "stick it on the appliance)."))


def _write_private(path: Path, text: str) -> None:
    """The sticker holds the passphrase: its file is as private as the profile (0600)."""
    import os
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
