"""`tsunagu backup` and `tsunagu restore FILE`."""
from __future__ import annotations

from pathlib import Path

import click

from ..wording import in_language
from .common import (cli_actor, config_option, error_text, friendly_errors, language,
                     load_config, speak)


@click.command("backup")
@config_option
@friendly_errors
def backup_command() -> None:
    """Copy the database, encrypted (safe while running); keep the newest [backup] keep
    copies; copy it to the USB stick too when [backup] usb_path is set."""
    from ..backup import BackupError, backup
    config = load_config()
    try:
        result = backup(config, actor=cli_actor())
    except BackupError as exc:
        raise click.ClickException(error_text(exc)) from None
    size = result.size // 1024
    click.echo(speak(f"バックアップを作りました：{result.path}（{size} KiB、暗号化済み）",
                     f"backup {result.path} ({size} KiB, encrypted)"))
    for old in result.removed:
        click.echo(speak(f"古いバックアップを削除：{old.name}", f"removed old backup {old.name}"))
    if result.usb_copy:
        click.echo(speak(f"USBメモリに写しました：{result.usb_copy}",
                         f"copied to {result.usb_copy}"))
    if result.usb_problem:
        click.echo(speak("注意", "warning") + ": " + in_language(result.usb_problem, language()),
                   err=True)


@click.command("restore")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even though the daemon seems to run.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="The backup key file (default: [backup] key_file), e.g. typed in from the "
                   "sealed printout on a new appliance.")
@friendly_errors
def restore_command(file: Path, force: bool, yes: bool, key: Path | None) -> None:
    """Replace the database with the backup FILE (decrypted; the current one is kept aside)."""
    from ..backup import BackupError, check_file, is_encrypted, restore
    config = load_config()
    try:
        if not file.is_file():
            raise BackupError(f"{file}: no such file / {file}：ファイルがありません")
        if not is_encrypted(file):
            check_file(file)  # an older plain backup: checked before asking
        if not yes:
            click.confirm(speak(f"{config.database} を {file} の内容で置き換えますか？",
                                f"Replace {config.database} with {file}?"), abort=True)
        kept = restore(config, file, force=force, actor=cli_actor(), key=key)
    except BackupError as exc:
        raise click.ClickException(error_text(exc)) from None
    click.echo(speak(f"{file} から復元しました。それまでのデータベースは {kept} に残してあります",
                     f"restored {file}; the previous database is kept as {kept}"))
