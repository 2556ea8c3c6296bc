"""`tsunagu audit verify|export`: the audit log as evidence (appliance.audit)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ..wording import in_language
from .common import config_option, friendly_errors, language, load_config_and_db, speak


@click.group("audit")
def audit_group() -> None:
    """The audit log: check its hash chain, export it for an inspector."""


@audit_group.command("verify")
@click.option("--head", "heads", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A saved chain head (…audit-head, e.g. from a USB stick) to check against; "
                   "the ones beside the backups are always checked.")
@config_option
@friendly_errors
def verify_command(heads: tuple[Path, ...]) -> None:
    """Recompute the hash chain: exit 0 when intact, 1 naming every row that was edited,
    deleted or reordered, and any saved head the log no longer holds."""
    from .. import audit
    config, db = load_config_and_db()
    saved = audit.saved_heads(config.backup.directory)
    if config.backup.usb_path is not None and Path(config.backup.usb_path).is_dir():
        saved += audit.saved_heads(config.backup.usb_path)
    for path in heads:
        try:
            saved.append((str(path), audit.Head.from_json(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(speak(f"{path}：監査ログの先頭の記録（audit-head）ではありません（{exc}）",
                                             f"{path}: not a chain head ({exc})")) from None
    result = audit.verify(db, saved)
    for problem in result.problems:
        click.echo(in_language(problem, language()))
    if not result.ok:
        raise SystemExit(1)
    if result.head:
        last = speak(f"、最後の行 {result.head.id}（{result.head.hash[:16]}…）",
                     f", last row {result.head.id} {result.head.hash[:16]}…")
    else:
        last = ""
    click.echo(speak(f"改ざんなし：{result.rows}行{last}。保存された先頭の記録 {len(saved)}件と照合しました",
                     f"intact: {result.rows} rows{last}; checked against {len(saved)} saved "
                     "head(s)"))


def _day(value: str | None, zone, option: str) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=zone).timestamp()
    except ValueError:
        raise click.BadParameter(speak(f"{value!r}：日付は 2027-01-31 のように書いてください",
                                       f"{value!r}: write a date as 2027-01-31"),
                                 param_hint=option) from None


@audit_group.command("export")
@click.option("--since", help="First day (YYYY-MM-DD, the clinic's time zone).")
@click.option("--until", help="Day after the last (YYYY-MM-DD).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@config_option
@friendly_errors
def export_command(since: str | None, until: str | None, out: Path | None) -> None:
    """The log as CSV (UTF-8, Excel opens it) with each row's chain hash, for an inspector."""
    from .. import audit
    config, db = load_config_and_db()
    data = audit.export_csv(db, config.zone, since=_day(since, config.zone, "--since"),
                            until=_day(until, config.zone, "--until"))
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        click.echo(speak(f"{out} に書き出しました", f"wrote {out}"), err=True)
