"""`tsunagu daemon`: run the process that owns the modems (systemd starts it at boot)."""
from __future__ import annotations

import logging
import signal

import click

from .common import config_option, friendly_errors, load_config


@click.command("daemon")
@config_option
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="How much the daemon logs (stderr).")
@friendly_errors
def daemon_command(log_level: str) -> None:
    """Send queued broadcasts through the modems, read replies and delivery reports.

    The only process that opens the serial ports; the web UI and `tsunagu check` talk to
    it through the database. Stops cleanly on SIGTERM or Ctrl-C after finishing the
    message in flight.
    """
    from ..daemon import Daemon, DaemonError
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..panel import PanelService
    config = load_config()
    daemon = Daemon(config, services=[PanelService(config)])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.stop())
    try:
        status = daemon.run()
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(status)
