"""`tsunagu modem status|send`: talk to one modem directly, for set-up and diagnosis.

These open the port themselves, so they are for a modem the daemon is not running on
(the port is opened exclusively: with the daemon up they say the port is busy).
"""
from __future__ import annotations

import json
from dataclasses import asdict

import click

PORT_HELP = "The modem's AT port (e.g. /dev/tsunagu-modem0, or a simulated modem's link)."


def _open(port: str):
    from modem.device import Modem
    from modem.errors import PortGone
    try:
        return Modem.open(port)
    except PortGone as exc:
        raise click.ClickException(
            f"{exc} (is the modem plugged in, and is the daemon not using it?)") from None


def _modem_errors():
    from modem.errors import ModemError
    return ModemError


@click.group("modem")
def modem_group() -> None:
    """Query or use one modem directly."""


@modem_group.command("status")
@click.option("--port", required=True, help=PORT_HELP)
@click.option("--pin", default=None, help="SIM PIN, if the SIM asks for one.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(port: str, pin: str | None, as_json: bool) -> None:
    """Identity, SIM, registration, signal and operator of the modem at --port."""
    modem = _open(port)
    try:
        identity = modem.initialise(pin=pin, request_status_reports=False)
        sim = modem.sim_state()
        registration = modem.registration()
        signal = modem.signal()
        operator = modem.operator() if registration.registered else None
        own = modem.own_number() if sim == "ready" else None
    except _modem_errors() as exc:
        raise click.ClickException(f"{port}: the modem did not answer as expected: {exc}") from None
    finally:
        modem.close()
    report = {"port": port, "identity": asdict(identity), "sim": sim,
              "registration": {**asdict(registration), "state": registration.state,
                               "registered": registration.registered},
              "signal": asdict(signal), "operator": operator, "own_number": own}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    dbm = f"{signal.dbm} dBm" if signal.dbm is not None else "unknown"
    click.echo(f"port          {port}")
    click.echo(f"modem         {identity.manufacturer} {identity.model} ({identity.revision})")
    click.echo(f"IMEI          {identity.imei}")
    click.echo(f"SIM           {sim}  IMSI {identity.imsi or '-'}  ICCID {identity.iccid or '-'}")
    click.echo(f"own number    {own or '-'}")
    click.echo(f"registration  {registration.state} (CS {registration.cs}, PS {registration.ps}, "
               f"EPS {registration.eps})")
    click.echo(f"signal        {dbm}, {signal.bars}/4 bars")
    click.echo(f"operator      {operator or '-'}")


@modem_group.command("send")
@click.option("--port", required=True, help=PORT_HELP)
@click.option("--pin", default=None, help="SIM PIN, if the SIM asks for one.")
@click.option("--no-report", is_flag=True, help="Do not request a delivery report.")
@click.argument("number")
@click.argument("text")
def send(port: str, pin: str | None, no_report: bool, number: str, text: str) -> None:
    """Send TEXT to NUMBER (090-1234-5678, +81 90…, full-width digits are all fine)."""
    from appliance.phone import PhoneError, normalise_mobile
    from modem import pdu
    from modem.errors import MessageTooLong
    # Everything that can be refused is refused before the port is touched.
    try:
        e164 = normalise_mobile(number)
    except PhoneError as exc:
        raise click.BadParameter(exc.reason, param_hint="NUMBER") from None
    try:
        if not text.strip():
            raise pdu.EmptyMessage("message is empty / 本文が空です")
        pdu.split(text)  # MessageTooLong past 10 parts, with the numbers in the message
        count = pdu.count(text)
    except (MessageTooLong, pdu.EmptyMessage) as exc:
        raise click.BadParameter(str(exc), param_hint="TEXT") from None
    modem = _open(port)
    try:
        modem.initialise(pin=pin, request_status_reports=not no_report)
        mrs = modem.send_text(e164, text, reference=_reference(),
                              request_status_report=not no_report)
    except _modem_errors() as exc:
        raise click.ClickException(f"not sent to {e164}: {exc}") from None
    finally:
        modem.close()
    click.echo(f"sent to {e164}: {count.chars} characters, {count.parts} part(s), "
               f"references {' '.join(map(str, mrs))}")


def _reference() -> int:
    import secrets
    return secrets.randbelow(256)  # the concatenation reference: any byte, random per message
