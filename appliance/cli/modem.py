"""`tsunagu modem status|send`: talk to one modem directly, for set-up and diagnosis.

These open the port themselves, so they are for a modem the daemon is not running on
(the port is opened exclusively: with the daemon up they say the port is busy).
"""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from .common import error_text, language, speak

PORT_HELP = "The modem's AT port (e.g. /dev/tsunagu-modem0, or a simulated modem's link)."


def _open(port: str):
    from modem.device import Modem
    from modem.errors import PortGone
    try:
        return Modem.open(port)
    except PortGone as exc:
        raise click.ClickException(_port_gone(exc)) from None


def _port_gone(exc) -> str:
    return speak(f"{exc}（モデムはつながっていますか？送信デーモンが使っていませんか？）",
                 f"{exc} (is the modem plugged in, and is the daemon not using it?)")


def _did_not_answer(port: str, exc) -> str:
    return speak(f"{port}：モデムが思ったとおりに応答しません：{exc}",
                 f"{port}: the modem did not answer as expected: {exc}")


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
        raise click.ClickException(_did_not_answer(port, exc)) from None
    finally:
        modem.close()
    report = {"port": port, "identity": asdict(identity), "sim": sim,
              "registration": {**asdict(registration), "state": registration.state,
                               "registered": registration.registered},
              "signal": asdict(signal), "operator": operator, "own_number": own}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    dbm = f"{signal.dbm} dBm" if signal.dbm is not None else speak("不明", "unknown")
    rows = [
        (("ポート", "port"), port),
        (("モデム", "modem"), f"{identity.manufacturer} {identity.model} ({identity.revision})"),
        (("IMEI", "IMEI"), identity.imei),
        (("SIM", "SIM"), f"{sim}  IMSI {identity.imsi or '-'}  ICCID {identity.iccid or '-'}"),
        (("自分の番号", "own number"), own or "-"),
        (("ネットワーク登録", "registration"),
         f"{registration.state} (CS {registration.cs}, PS {registration.ps}, "
         f"EPS {registration.eps})"),
        (("電波", "signal"), f"{dbm}, {speak('アンテナ', '')}{signal.bars}/4"
                              f"{speak('', ' bars')}"),
        (("通信事業者", "operator"), operator or "-"),
    ]
    for (ja, en), value in rows:
        label = speak(ja, en)
        # Pad by display width: a Japanese character takes two columns of a terminal.
        width = sum(2 if ord(ch) > 0x2e7f else 1 for ch in label)
        click.echo(f"{label}{' ' * max(1, 18 - width)}{value}")


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
        raise click.BadParameter(exc.message(language()), param_hint="NUMBER") from None
    try:
        if not text.strip():
            raise pdu.EmptyMessage(speak("本文が空です", "message is empty"))
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
        raise click.ClickException(speak(f"{e164} に送れませんでした：{exc}",
                                         f"not sent to {e164}: {exc}")) from None
    finally:
        modem.close()
    references = " ".join(map(str, mrs))
    click.echo(speak(f"{e164} に送りました：{count.chars}文字、SMS {count.parts}通、"
                     f"参照番号 {references}",
                     f"sent to {e164}: {count.chars} characters, {count.parts} part(s), "
                     f"references {references}"))


def _reference() -> int:
    import secrets
    return secrets.randbelow(256)  # the concatenation reference: any byte, random per message


@modem_group.command("doctor")
@click.option("--port", default=None, help=PORT_HELP + " Opened here: the daemon must not own it.")
@click.option("--modem", "modem_name", default=None,
              help="A [[modem]] of the configuration; through the daemon when it runs.")
@click.option("--fix", is_flag=True,
              help="Apply the settings known to be safe: carrier profile automatic, IMS on, "
                   "SMS centre from the SIM.")
@click.option("--loopback-to", default=None,
              help="Send the loop-back SMS here (default: the SIM's own number).")
@click.option("--timeout", default=90.0, show_default=True,
              help="Seconds to wait for the loop-back SMS to come back.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="The configuration file (default: $TSUNAGU_CONFIG).")
def doctor_command(port: str | None, modem_name: str | None, fix: bool, loopback_to: str | None,
                   timeout: float, as_json: bool, config_path: str | None) -> None:
    """What is wrong with a modem, each failing line with what to do. Exit 0 all good,
    1 warnings, 2 something fails."""
    from .. import doctor
    if (port is None) == (modem_name is None):
        raise click.UsageError(speak("--port P か --modem NAME のどちらか一つを指定してください",
                                     "give either --port P or --modem NAME"))
    if loopback_to is not None:
        from appliance.phone import PhoneError, normalise_mobile
        try:
            loopback_to = normalise_mobile(loopback_to)
        except PhoneError as exc:
            raise click.BadParameter(exc.message(language()), param_hint="--loopback-to") from None
    lang = "ja"
    if modem_name is not None:
        report, lang = _doctor_with_config(config_path, modem_name, fix, loopback_to, timeout)
    else:
        report = _doctor_direct(port, port, fix, loopback_to, timeout, lang)
    _print_report(report, lang, as_json)
    raise SystemExit({doctor.OK: 0, doctor.WARN: 1, doctor.FAIL: 2}[report.status])


def _doctor_with_config(config_path, name, fix, loopback_to, timeout):
    """Through the daemon when it runs (only it may open the port), else directly."""
    import time

    from .. import check, config as config_mod, doctor, health
    from ..db import connect
    try:
        config = config_mod.load(config_path)
        modem = config.modem(name)
    except config_mod.ConfigError as exc:
        raise click.ClickException(error_text(exc)) from None
    except KeyError:
        raise click.BadParameter(speak(f"設定に「{name}」という [[modem]] はありません",
                                       f"no [[modem]] named {name!r} in the configuration"),
                                 param_hint="--modem") from None
    db = connect(config.database)
    h = health.read_health(db.conn, config, time.time())
    if not h.daemon_alive:
        return _doctor_direct(modem.port, name, fix, loopback_to, timeout, config.language), \
            config.language
    from .common import cli_actor
    try:
        answer = check.ask_daemon(db, "doctor", actor=cli_actor(), timeout=150,
                                  args={"modem": name, "fix": fix, "loopback_to": loopback_to})
    except check.DaemonDidNotAnswer as exc:
        raise click.ClickException(f"{name}: {exc}") from None
    report = doctor.Report(answer["modem"], [doctor.Line(**line) for line in answer["lines"]],
                           answer.get("loopback"))
    if report.loopback:
        # The daemon saves what comes back (replies); look for the token there.
        token, deadline = report.loopback["token"], time.monotonic() + timeout
        came_back = False
        while not came_back and time.monotonic() < deadline:
            came_back = db.conn.execute("SELECT 1 FROM inbound_messages WHERE text LIKE ?",
                                        [f"%{token}%"]).fetchone() is not None
            if not came_back:
                time.sleep(0.5)  # polling another process's database; no event to wait on
        doctor.loopback_line(report, came_back, config.language)
    return report, config.language


def _doctor_direct(port, name, fix, loopback_to, timeout, lang):
    import time

    from .. import doctor
    from modem.device import Inbound
    device = _open(port)
    try:
        device.initialise(request_status_reports=False)
        report = doctor.Doctor(device, name, lang=lang, fix=fix).run(loopback_to=loopback_to)
        if report.loopback:
            token, deadline = report.loopback["token"], time.monotonic() + timeout
            came_back = False
            while not came_back and time.monotonic() < deadline:
                event = device.next_event(min(1.0, max(0.0, deadline - time.monotonic())))
                if isinstance(event, Inbound) and token in event.text:
                    came_back = True
                    for store, index in event.locations:  # ours: not a patient's reply
                        device.delete_stored(index, store)
            doctor.loopback_line(report, came_back, lang)
    except _modem_errors() as exc:
        raise click.ClickException(_did_not_answer(port, exc)) from None
    finally:
        device.close()
    return report


def _print_report(report, lang: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    marks = {"ok": "✔", "warning": "△", "fail": "✖"}
    click.echo(f"{report.modem}: " + ("診断結果" if lang == "ja" else "diagnosis"))
    for line in report.lines:
        click.echo(f" {marks[line.status]} {line.key:<16} {line.summary}")
        if line.advice and line.status != "ok":
            click.echo(f"     → {line.advice}")
        if line.fixed:
            click.echo(f"     ✔ {'修正しました' if lang == 'ja' else 'fixed'}: {line.fixed}")
    words = {"ok": ("問題ありません", "all good"), "warning": ("注意があります", "warnings"),
             "fail": ("問題があります", "something fails")}[report.status]
    click.echo(words[0] if lang == "ja" else words[1])


@modem_group.command("capture")
@click.option("--port", required=True, help=PORT_HELP)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the anonymised transcript (JSON lines).")
@click.option("--send-to", default=None,
              help="The one test SMS goes here (default: the SIM's own number, a loop-back).")
def capture(port: str, out: str, send_to: str | None) -> None:
    """Record an anonymised AT transcript of set-up, doctor and one send (IMEI, IMSI, ICCID,
    numbers and message texts masked), to send to whoever supports the clinic."""
    from modem.capture import RecordingPort
    from modem.device import Modem
    from modem.at import ATSession
    from modem.errors import PortGone
    from modem.transport import open_port

    from .. import doctor
    if send_to is not None:
        from appliance.phone import PhoneError, normalise_mobile
        try:
            send_to = normalise_mobile(send_to)
        except PhoneError as exc:
            raise click.BadParameter(exc.message(language()), param_hint="--send-to") from None
    try:
        recording = RecordingPort(open_port(port))
    except PortGone as exc:
        raise click.ClickException(_port_gone(exc)) from None
    device = Modem(ATSession(recording), path=port)
    try:
        device.initialise(request_status_reports=False)
        report = doctor.Doctor(device, port, lang="en").run(loopback_to=send_to)
    except _modem_errors() as exc:
        raise click.ClickException(_did_not_answer(port, exc)) from None
    finally:
        device.close()
    recording.transcript.write(out, header={
        "tool": "tsunagu modem capture", "profile": device.profile.name,
        "status": report.status, "anonymised": True})
    lines, family = len(recording.transcript.lines()), device.profile.family
    click.echo(speak(f"{out} に書き出しました：{lines}行（{family}。IMEI・IMSI・ICCID・電話番号・"
                     "PDUは伏せてあります）",
                     f"wrote {out}: {lines} lines ({family}; IMEI, IMSI, ICCID, numbers and "
                     "PDUs masked)"))
