"""`tsunagu sim`: run one simulated modem on a pseudo-terminal until stopped."""
from __future__ import annotations

import signal
import threading

import click


def _delay(value: str) -> float | tuple[float, float]:
    # "1-3" draws each send's delay uniformly from 1 to 3 s, like a real network.
    try:
        if "-" in value:
            low, high = (float(v) for v in value.split("-", 1))
            if not 0 <= low <= high:
                raise ValueError
            return low, high
        seconds = float(value)
        if seconds < 0:
            raise ValueError
        return seconds
    except ValueError:
        raise click.BadParameter(f"{value!r}: give seconds (0.5) or a range (1-3)",
                                 param_hint="--send-delay") from None


@click.command()
@click.option("--link", required=True, type=click.Path(dir_okay=False),
              help="Symlink to create, pointing at the modem's pty (the port to open).")
@click.option("--log", "log", type=click.Path(dir_okay=False),
              help="Network log: one JSON object per submitted part and per whole message.")
@click.option("--send-delay", default="0", show_default=True,
              help="Seconds each SMS takes on the air, or a range such as 1-3.")
def sim(link: str, log: str | None, send_delay: str) -> None:
    """Run a simulated modem (a Quectel EC25 with a Japanese SIM) until Ctrl-C."""
    from modem.sim import SimulatedModem

    modem = SimulatedModem(link, log=log, send_delay=_delay(send_delay)).start()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    click.echo(f"simulated modem on {link}", err=True)
    stopped.wait()
    modem.stop()
