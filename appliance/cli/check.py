"""`tsunagu check`: the readiness check, for people, cron, systemd and monitoring."""
from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import asdict

import click

from .common import cli_actor, config_option, friendly_errors, load_config


@click.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--live", is_flag=True, help="Ask the daemon to probe every modem now.")
@click.option("--send-test", is_flag=True,
              help="Send the test message to the test group and wait for delivery reports.")
@click.option("--timeout", default=300.0, show_default=True,
              help="Seconds to wait for the daemon (and for --send-test's reports).")
@friendly_errors
def check_command(as_json: bool, live: bool, send_test: bool, timeout: float) -> None:
    """Could the appliance send right now? Exit 0 ok, 1 warning, 2 critical."""
    from .. import check, import_previews
    config = load_config()
    lang = config.language
    db, met = _open(config)
    if not met:
        # The timer's run also clears abandoned import previews (patient data on disk).
        try:
            import_previews.prune(config)
        except OSError as exc:  # a disk that refuses writes: the storage line says so
            met += _fault(config, exc)
    extra: list[check.Result] = []
    if (live or send_test) and db is not None and not met:
        try:
            check.ask_daemon(db, "probe", actor=cli_actor(), timeout=min(timeout, 60))
        except check.DaemonDidNotAnswer as exc:
            extra.append(check.Result("live", check.CRITICAL, str(exc)))
        except sqlite3.Error as exc:  # the request could not be written: the disk says why
            met += _fault(config, exc)
    if send_test and not extra and not met:
        extra.append(_send_test(db, config, timeout))
    now = time.time()
    results = check.run_checks(db, config, now, met=met) + extra
    if db is not None and not met:
        try:
            check.record(db, results, now=now, live=live or send_test)
        except sqlite3.Error as exc:  # nowhere to keep this run: the output says why
            met += _fault(config, exc)
            results = check.run_checks(db, config, now, met=met) + extra
    status = check.overall(results)
    if as_json:
        click.echo(json.dumps({"status": status, "results": [asdict(r) for r in results]},
                              ensure_ascii=False, indent=2))
    else:
        words = check.STATUS_WORDS[lang]
        for r in results:
            click.echo(f"{words[r.status]:<8} {r.message}")
        click.echo(f"==> {words[status]}")
    sys.exit(status)


def _open(config):
    """The database, and the storage faults met opening it: opened for reading only when
    it cannot be opened to write (a full or read-only disk), None when not at all."""
    from .. import db as db_mod
    try:
        return db_mod.connect(config.database), []
    except sqlite3.Error as exc:
        met = _fault(config, exc)
    try:
        return db_mod.connect_read_only(config.database), met
    except sqlite3.Error as exc:
        return None, met + _fault(config, exc)


def _fault(config, exc: sqlite3.Error | OSError) -> list:
    """The storage fault *exc* is, as a list (empty never: any other error is raised)."""
    from .. import storage
    fault = storage.fault_of(exc, config.database.parent)
    if fault is None:
        raise exc
    return [fault]


def _send_test(db, config, timeout: float):
    from .. import check
    lang = config.language
    try:
        answer = check.ask_daemon(db, "send_test", actor=cli_actor(), timeout=60)
    except check.DaemonDidNotAnswer as exc:
        return check.Result("send_test", check.CRITICAL, str(exc))
    broadcast_id = answer["broadcast_id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        counts = dict(db.conn.execute("SELECT state, count(*) FROM recipients WHERE "
                                      "broadcast_id = ? GROUP BY state", [broadcast_id]))
        total = sum(counts.values())
        if counts.get("delivered", 0) == total:
            return check.Result("send_test", check.OK, check._t(
                lang, f"送信テスト: {total}件すべて届きました",
                f"test message delivered to all {total}"))
        if counts.get("failed", 0) or counts.get("uncertain", 0):
            break
        time.sleep(0.5)
    return check.Result("send_test", check.CRITICAL, check._t(
        lang, f"送信テストが届きませんでした（{counts}）",
        f"the test message was not delivered to everyone: {counts}"))
