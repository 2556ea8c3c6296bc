"""`tsunagu backup` and `tsunagu restore FILE`."""
from __future__ import annotations

from pathlib import Path

import click

from .common import cli_actor, config_option, friendly_errors, load_config


@click.command("backup")
@config_option
@friendly_errors
def backup_command() -> None:
    """Copy the database (safe while running); keep the newest N; copy to USB if set."""
    from ..backup import BackupError, backup
    config = load_config()
    try:
        result = backup(config, actor=cli_actor())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup {result.path} ({result.size // 1024} KiB, encrypted)")
    for old in result.removed:
        click.echo(f"removed old backup {old.name}")
    if result.usb_copy:
        click.echo(f"copied to {result.usb_copy}")
    if result.usb_problem:
        click.echo(f"warning: {result.usb_problem}", err=True)


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
            raise BackupError(f"{file}: no such file")
        if not is_encrypted(file):
            check_file(file)  # an older plain backup: checked before asking
        if not yes:
            click.confirm(f"Replace {config.database} with {file}?", abort=True)
        kept = restore(config, file, force=force, actor=cli_actor(), key=key)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {file}; the previous database is kept as {kept}")
