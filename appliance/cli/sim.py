"""`tsunagu sim` runs one simulated modem; `tsunagu sim-ctl` drives a running one."""
from __future__ import annotations

import json
import signal

import click


def _delay(value: str, hint: str):
    from modem.sim import parse_delay
    try:
        return parse_delay(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


@click.command()
@click.option("--link", required=True, type=click.Path(dir_okay=False),
              help="Symlink to create, pointing at the modem's pty (the port to open).")
@click.option("--log", "log", type=click.Path(dir_okay=False),
              help="Network log: one JSON object per submitted part and per whole message.")
@click.option("--send-delay", default="0", show_default=True,
              help="Seconds each SMS takes on the air, or a range such as 1-3.")
@click.option("--report-delay", default="0", show_default=True,
              help="Seconds from a send to its delivery report, or a range such as 2-6.")
@click.option("--pin", default=None, help="Give the SIM this PIN (it then starts locked).")
@click.option("--seed", default=0, type=int, show_default=True,
              help="Seed for the random delays and fault rates.")
@click.option("--model", default="ec25", show_default=True,
              type=click.Choice(["ec25", "sim7600"]),
              help="Which modem to be: a Quectel EC25 or a SIMCom SIM7600JC-H.")
def sim(link: str, log: str | None, send_delay: str, report_delay: str, pin: str | None,
        seed: int, model: str) -> None:
    """Run a simulated modem (a Quectel EC25 or SIMCom SIM7600 with a Japanese SIM) until Ctrl-C.

    Control it while it runs with `tsunagu sim-ctl --link LINK …` (socket LINK.ctl).
    """
    from modem.sim import SimulatedModem

    # Block the stop signals before the modem's threads start (they inherit the mask) and
    # take them with sigwait: a signal handler setting an Event the main thread waits on
    # never ran when the kernel gave the signal to another thread, and Ctrl-C then hung.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    modem = SimulatedModem(link, log=log, send_delay=_delay(send_delay, "--send-delay"),
                           report_delay=_delay(report_delay, "--report-delay"), pin=pin,
                           seed=seed, control=True, model=model).start()
    click.echo(f"simulated modem on {link} (SIM number {modem.card.identity.number}; "
               f"control: tsunagu sim-ctl --link {link})", err=True)
    signal.sigwait(stop_signals)
    modem.stop()


@click.group("sim-ctl")
@click.option("--link", required=True, type=click.Path(dir_okay=False),
              help="The link the simulated modem was started with.")
@click.pass_context
def sim_ctl(ctx: click.Context, link: str) -> None:
    """Drive a running simulated modem: replies, outcomes and faults."""
    from modem.sim import SimControl
    ctx.obj = SimControl(link)


def _call(ctx: click.Context, command: str, **args) -> None:
    from modem.sim import SimControlError
    try:
        result = ctx.obj.call(command, **args)
    except SimControlError as exc:
        raise click.ClickException(str(exc)) from None
    if result is not None:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))


def _mobile(number: str | None, hint: str) -> str | None:
    """A number as people type it (090-1000-0036) in the E.164 form the modem sees."""
    from appliance.phone import PhoneError, normalise_mobile

    from .common import language
    if number is None:
        return None
    try:
        return normalise_mobile(number)
    except PhoneError as exc:
        raise click.BadParameter(exc.message(language()), param_hint=hint) from None


@sim_ctl.command("inject-sms")
@click.argument("sender")
@click.argument("text")
@click.pass_context
def inject_sms(ctx, sender: str, text: str) -> None:
    """A phone at SENDER texts TEXT to the modem's SIM (a reply)."""
    _call(ctx, "inject_sms", sender=_mobile(sender, "SENDER"), text=text)


@sim_ctl.command("set-outcome")
@click.argument("number")
@click.argument("outcome", type=click.Choice(["delivered", "pending", "failed", "none"]))
@click.pass_context
def set_outcome(ctx, number: str, outcome: str) -> None:
    """What the delivery report says for messages to NUMBER (none: no report)."""
    _call(ctx, "set_outcome", number=_mobile(number, "NUMBER"), outcome=outcome)


@sim_ctl.command("fail-sends")
@click.argument("code", type=int)
@click.option("--number", help="Only sends to this number.")
@click.option("--rate", type=float, help="Fail this fraction of sends (0-1).")
@click.option("--count", type=int, help="Only the next COUNT matching sends.")
@click.pass_context
def fail_sends(ctx, code: int, number: str | None, rate: float | None, count: int | None) -> None:
    """Answer sends with +CMS ERROR CODE (e.g. 331 no network, 500 unknown)."""
    _call(ctx, "fail_sends", code=code, number=_mobile(number, "--number"), rate=rate,
          count=count)


@sim_ctl.command("withhold-prompts")
@click.option("--count", type=int, default=1, show_default=True,
              help="How many AT+CMGS in a row get no prompt.")
@click.pass_context
def withhold_prompts(ctx, count: int) -> None:
    """The next COUNT AT+CMGS get no "> " prompt (nothing is sent)."""
    _call(ctx, "withhold_prompts", count=count)


def _simple(name: str, help_text: str) -> None:
    @sim_ctl.command(name.replace("_", "-"), help=help_text)
    @click.pass_context
    def command(ctx) -> None:
        _call(ctx, name)


for _name, _help in [("status", "Show the modem's state."),
                     ("messages", "List every message the network delivered."),
                     ("clear_faults", "Remove injected send faults, dropped commands and withheld prompts."),
                     ("drop_next_command", "Leave the next AT command unanswered."),
                     ("remove_sim", "Pull the SIM card out."), ("insert_sim", "Put it back."),
                     ("unplug", "Pull the USB cable: the port vanishes."),
                     ("replug", "Plug it back in: the port returns, the modem rebooted."),
                     ("reboot", "The modem restarts by itself: same port, settings lost."),
                     ("hold_sends", "The network stops acknowledging sends (they wait)."),
                     ("release_sends", "The network acknowledges again, held sends first."),
                     ("clear_smsc", "Empty the SMS centre in use (AT+CRES restores it)."),
                     ("hang_up_far_end", "The other phone hangs up every call.")]:
    _simple(_name, _help)


@sim_ctl.command("set-registration")
@click.argument("state", type=click.Choice(["home", "roaming", "searching", "not_registered",
                                             "denied"]))
@click.pass_context
def set_registration(ctx, state: str) -> None:
    """Network registration as the modem will report it."""
    _call(ctx, "set_registration", state=state)


@sim_ctl.command("set-signal")
@click.argument("csq", type=int)
@click.pass_context
def set_signal(ctx, csq: int) -> None:
    """Signal as AT+CSQ reports it: 0-31 (31 best), 99 unknown."""
    _call(ctx, "set_signal", csq=csq)


@sim_ctl.command("set-send-delay")
@click.argument("delay")
@click.pass_context
def set_send_delay(ctx, delay: str) -> None:
    """Seconds per SMS, or a range such as 1-3."""
    _call(ctx, "set_send_delay", delay=delay)


@sim_ctl.command("set-ims")
@click.argument("available", type=click.Choice(["on", "off"]))
@click.pass_context
def set_ims(ctx, available: str) -> None:
    """Whether the network offers IMS (without it, SMS over LTE fails with +CMS ERROR 500)."""
    _call(ctx, "set_ims", available=available == "on")


@sim_ctl.command("set-carrier-profile")
@click.argument("name")
@click.pass_context
def set_carrier_profile(ctx, name: str) -> None:
    """Select a Quectel carrier profile (MBN) by hand, e.g. Commercial-KDDI (after a reboot)."""
    _call(ctx, "set_carrier_profile", name=name)


@sim_ctl.command("hang")
@click.argument("kind", type=click.Choice(["sms", "total"]))
@click.pass_context
def hang(ctx, kind: str) -> None:
    """The firmware hangs: sms (sends never answered; a reset clears it) or total (only a
    power cycle clears it)."""
    _call(ctx, "hang", kind=kind)


@sim_ctl.command("set-network-time-offset")
@click.argument("seconds", type=float)
@click.pass_context
def set_network_time_offset(ctx, seconds: float) -> None:
    """The network's clock runs SECONDS ahead of this machine's (negative: behind)."""
    _call(ctx, "set_network_time_offset", seconds=seconds)


@sim_ctl.command("set-reject-cause")
@click.argument("cause", type=int)
@click.pass_context
def set_reject_cause(ctx, cause: int) -> None:
    """The EMM cause given with a denied registration (e.g. 7 EPS services not allowed)."""
    _call(ctx, "set_reject_cause", cause=cause)


@sim_ctl.command("ring")
@click.argument("number")
@click.pass_context
def ring(ctx, number: str) -> None:
    """A phone at NUMBER calls the SIM (RING until answered or given up)."""
    _call(ctx, "ring", number=number)


@sim_ctl.command("set-call-outcome")
@click.argument("number")
@click.argument("outcome", type=click.Choice(["answer", "no_answer", "busy", "unreachable"]))
@click.pass_context
def set_call_outcome(ctx, number: str, outcome: str) -> None:
    """What a call from the appliance to NUMBER does: answer, no_answer (it rings until the
    network gives up), busy, unreachable (switched off or out of reach)."""
    _call(ctx, "set_call_outcome", number=_mobile(number, "NUMBER"), outcome=outcome)


@sim_ctl.command("inject-cbs")
@click.argument("text")
@click.option("--etws", type=click.Choice(["earthquake", "tsunami", "earthquake_tsunami",
                                           "test", "other"]),
              help="An ETWS warning of this type (message id 4352-4356).")
@click.option("--message-id", type=int, help="Any cell broadcast message id instead.")
@click.option("--gsm7", is_flag=True, help="GSM 7-bit pages instead of UCS2 (ASCII text only).")
@click.option("--skip-page", type=int, help="This page is lost on the way.")
@click.pass_context
def inject_cbs(ctx, text: str, etws: str | None, message_id: int | None, gsm7: bool,
               skip_page: int | None) -> None:
    """The network broadcasts TEXT to the cell (an earthquake warning: --etws earthquake).
    A text longer than one page (41 full-width characters) goes as several pages."""
    if (etws is None) == (message_id is None):
        raise click.UsageError("give --etws TYPE or --message-id N")
    _call(ctx, "inject_cbs", text=text, etws=etws, message_id=message_id, gsm7=gsm7,
          skip_page=skip_page)


@sim_ctl.command("set-cell-broadcasts")
@click.argument("supported", type=click.Choice(["on", "off"]))
@click.pass_context
def set_cell_broadcasts(ctx, supported: str) -> None:
    """Whether the modem takes AT+CSCB (off: a model without cell broadcasts)."""
    _call(ctx, "set_cell_broadcasts", supported=supported == "on")
