"""`tsunagu modem doctor`: what is wrong with a modem, in words an office manager can act on.

Each line looks at one thing — identity, SIM, SMS centre, registration, signal, IMS, the
carrier profile, the SMS bearer, network time, and a loop-back SMS — and a failing line says
in Japanese what it means and what to do. `fix=True` applies only settings known to be safe
(the carrier profile chosen automatically, IMS on, the SMS centre restored from the SIM) and
says what it changed. It runs on an opened modem: the CLI's own (the port is free) or the
daemon's worker's (through a daemon_requests row, as `check --live` does).

Sources for what each answer means: TS 27.007 (+CEREG reject causes: TS 24.301 9.9.3.9,
+CESQ 8.69, +CIREG 8.71), TS 27.005 (+CSCA, +CRES), and modem.profiles for the vendors'.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field

from modem import profiles
from modem.errors import CommandError, ModemError

OK, WARN, FAIL = "ok", "warning", "fail"
WEAK_RSRP_DBM = -110        # below this an LTE signal often fails to carry SMS reliably
# EMM causes a network gives when it refuses registration (TS 24.301 9.9.3.9), in Japanese.
REJECT_CAUSES = {
    2: "SIMがネットワークに登録されていません（IMSI unknown）",
    3: "SIMが不正と判定されました（illegal UE）",
    6: "この機器（IMEI）が拒否されました（illegal ME）",
    7: "このSIMはLTE（EPS）の利用が許可されていません",
    8: "このSIMはLTEでも3G/2Gでも利用が許可されていません",
    11: "この事業者のネットワークは使えません（PLMN not allowed）",
    12: "この地域では使えません（tracking area not allowed）",
    13: "この地域ではローミングできません",
    14: "この事業者のLTEは使えません（EPS not allowed in this PLMN）",
    15: "この地域に使える基地局がありません",
}
_CEREG = re.compile(r"\+CEREG:\s*\d+,(\d+)(?:,[^,]*,[^,]*,[^,]*(?:,(\d+),(\d+))?)?")
_CESQ = re.compile(r"\+CESQ:\s*\d+,\d+,\d+,\d+,(\d+),(\d+)")
_QCFG_IMS = re.compile(r'\+QCFG:\s*"ims",(\d+),(\d+)')
_CIREG = re.compile(r"\+CIREG:\s*\d+,(\d+)")
_MBN = re.compile(r'\+QMBNCFG:\s*"List",\d+,(\d+),(\d+),"([^"]+)"')
_AUTOSEL = re.compile(r'\+QMBNCFG:\s*"AutoSel",(\d+)')
_CSCA = re.compile(r'\+CSCA:\s*"([^"]*)"')
_CGSMS = re.compile(r"\+CGSMS:\s*(\d+)")


@dataclass
class Line:
    key: str
    status: str
    summary: str
    advice: str = ""          # what it means and what to do (in the chosen language)
    fixed: str = ""           # what --fix changed


@dataclass
class Report:
    modem: str
    lines: list[Line] = field(default_factory=list)
    loopback: dict | None = None   # {"to": number, "token": text} when a loop-back was sent

    @property
    def status(self) -> str:
        states = {line.status for line in self.lines}
        return FAIL if FAIL in states else WARN if WARN in states else OK

    def as_json(self) -> dict:
        return {"modem": self.modem, "status": self.status, "loopback": self.loopback,
                "lines": [asdict(line) for line in self.lines]}


def _t(lang: str, ja: str, en: str) -> str:
    return ja if lang == "ja" else en


class Doctor:
    """Looks at one opened, initialised modem (modem.device.Modem)."""

    def __init__(self, device, name: str, *, lang: str = "ja", fix: bool = False) -> None:
        self.device = device
        self.session = device.session
        self.name = name
        self.lang = lang
        self.fix = fix
        self.report = Report(name)

    def _ask(self, command: str) -> list[str] | None:
        try:
            return self.session.command(command)
        except CommandError:
            return None  # the modem does not know it, or refuses now: the line says so

    def _add(self, key: str, status: str, summary: str, advice: str = "", fixed: str = "") -> Line:
        line = Line(key, status, summary, advice, fixed)
        self.report.lines.append(line)
        return line

    def run(self, *, loopback_to: str | None = None) -> Report:
        for step in (self.identity, self.sim, self.sms_centre, self.registration, self.signal,
                     self.ims, self.carrier_profile, self.bearer, self.network_time,
                     self.cell_broadcasts):
            try:
                step()
            except ModemError as exc:
                self._add(step.__name__, FAIL, f"no answer: {exc}", _t(
                    self.lang, "モデムが応答しません。USBケーブルを差し直してください",
                    "the modem does not answer: replug its USB cable"))
        self.loopback(loopback_to)
        return self.report

    # -- each line -----------------------------------------------------------------------

    def identity(self) -> None:
        ident = self.device.identify()
        profile = self.device.profile
        self._add("identity", OK, f"{ident.manufacturer} {ident.model} ({ident.revision}), "
                  f"IMEI {ident.imei}, profile {profile.family}")

    def sim(self) -> None:
        state = self.device.sim_state()
        if state != "ready":
            self._add("sim", FAIL, f"SIM {state}", _t(
                self.lang, "SIMカードが使えません。SIMが奥まで差さっているか、PINが設定と合っているか確認してください",
                "the SIM is not usable: check it is inserted and the PIN in the configuration"))
            return
        ident = self.device.identify()
        own = self.device.own_number()
        self._add("sim", OK, f"SIM ready, ICCID {ident.iccid or '-'}, own number {own or '-'}")

    def sms_centre(self) -> None:
        lines = self._ask("AT+CSCA?")
        match = _CSCA.search(lines[0]) if lines else None
        centre = match.group(1) if match else ""
        if centre:
            self._add("sms_centre", OK, f"SMS centre {centre}")
            return
        fixed = ""
        if self.fix and self._ask("AT+CRES") is not None:
            again = self._ask("AT+CSCA?")
            match = _CSCA.search(again[0]) if again else None
            if match and match.group(1):
                fixed = f"SMS centre restored from the SIM: {match.group(1)} (AT+CRES)"
        self._add("sms_centre", OK if fixed else FAIL, "SMS centre (AT+CSCA) is empty", _t(
            self.lang, "SMSセンター番号が空のため送信できません。--fix でSIMに記録された番号に戻せます",
            "no SMS centre: nothing can be sent. --fix restores the one stored on the SIM"),
            fixed)

    def registration(self) -> None:
        reg = self.device.registration()
        summary = f"registration CS {reg.cs}, PS {reg.ps}, EPS {reg.eps}"
        if reg.registered:
            self._add("registration", OK, summary)
            return
        cause = None
        if reg.eps == "denied" and self._ask("AT+CEREG=3") is not None:
            lines = self._ask("AT+CEREG?")
            match = _CEREG.search(lines[0]) if lines else None
            if match and match.group(3):
                cause = int(match.group(3))
            self._ask("AT+CEREG=1")  # back to the notices the daemon listens to
        if reg.state == "denied":
            why = REJECT_CAUSES.get(cause, "理由は示されませんでした") if cause else "理由は示されませんでした"
            self._add("registration", FAIL, summary + (f", reject cause {cause}" if cause else ""),
                      _t(self.lang, f"ネットワークに登録を拒否されました：{why}。SMSが使える契約か、"
                                    "SIMの有効化を通信事業者に確認してください",
                         f"the network refused registration (cause {cause}): ask the carrier "
                         "whether the SIM is active and includes SMS"))
        else:
            self._add("registration", FAIL, summary, _t(
                self.lang, "ネットワークに登録されていません（圏外）。アンテナをつなぎ、窓の近くに置いて"
                           "ください",
                "not registered (no service): connect the antennas, move it near a window"))

    def signal(self) -> None:
        signal = self.device.signal()
        lines = self._ask("AT+CESQ")
        match = _CESQ.search(lines[0]) if lines else None
        rsrp = rsrq = None
        if match and match.group(2) != "255":
            rsrp = -141 + int(match.group(2))          # TS 27.007 8.69: 0 → -140 dBm or less
            rsrq = -20 + int(match.group(1)) * 0.5     # 0 → -19.5 dB or less
        summary = f"signal CSQ {signal.csq if signal.csq is not None else '-'} " \
            f"({signal.dbm if signal.dbm is not None else '-'} dBm)"
        if rsrp is not None:
            summary += f", RSRP {rsrp} dBm, RSRQ {rsrq:g} dB"
        weak = (rsrp is not None and rsrp < WEAK_RSRP_DBM) or signal.bars <= 1
        if weak:
            self._add("signal", WARN, summary, _t(
                self.lang, "電波が弱いため、送信が遅れたり失敗したりします。アンテナを窓際や高い所へ"
                           "動かしてください",
                "weak signal: sends may be slow or fail; move the antennas to a window or higher"))
        else:
            self._add("signal", OK, summary)

    def ims(self) -> None:
        profile = self.device.profile
        if profile.ims == "qcfg":
            lines = self._ask('AT+QCFG="ims"')
            match = _QCFG_IMS.search(lines[0]) if lines else None
            if not match:
                self._add("ims", WARN, "IMS state not reported")
                return
            mode, state = int(match.group(1)), int(match.group(2))
            summary = f"IMS {'registered' if state else 'not registered'} (mode {mode})"
        else:
            lines = self._ask("AT+CIREG?")
            match = _CIREG.search(lines[0]) if lines else None
            if not match:
                self._add("ims", WARN, "IMS state not reported (AT+CIREG)")
                return
            mode, state = None, int(match.group(1))
            summary = f"IMS {'registered' if state else 'not registered'}"
        if state:
            self._add("ims", OK, summary)
            return
        fixed = ""
        if self.fix and mode == 2 and self._ask('AT+QCFG="ims",1') is not None:
            fixed = 'IMS turned on (AT+QCFG="ims",1); it registers within a minute'
        self._add("ims", FAIL, summary, _t(
            self.lang, "IMSに登録されていません。日本のLTEではSMSがIMS経由のため送信に失敗します。"
                       "--fix でIMSを有効にし、キャリア設定を自動にします。直らない場合はSIMが"
                       "VoLTE/SMS対応か通信事業者に確認してください",
            "not registered with IMS: on Japanese LTE, SMS goes over IMS and fails. --fix turns "
            "IMS on and the carrier profile to automatic; if it persists, ask the carrier "
            "whether the SIM supports VoLTE/SMS"), fixed)

    def carrier_profile(self) -> None:
        if not self.device.profile.carrier_profiles:
            return  # SIMCom and generic modems do not expose one
        auto = self._ask('AT+QMBNCFG="AutoSel"')
        match = _AUTOSEL.search(auto[0]) if auto else None
        autosel = match is not None and match.group(1) == "1"
        listing = self._ask('AT+QMBNCFG="List"') or []
        active = next((m.group(3) for m in map(_MBN.search, listing) if m and m.group(2) == "1"),
                      None)
        imsi = self.device.identify().imsi or ""
        expected = profiles.QUECTEL_CARRIER_MBN.get(imsi[:5])
        summary = f"carrier profile {active or '-'} ({'automatic' if autosel else 'chosen by hand'})"
        if autosel and (expected is None or active in (expected, None)):
            self._add("carrier_profile", OK, summary)
            return
        if expected is not None and active == expected:
            self._add("carrier_profile", OK, summary)
            return
        fixed = ""
        if self.fix and self._ask('AT+QMBNCFG="AutoSel",1') is not None:
            self._ask("AT+CFUN=1,1")  # the profile is chosen at the next boot
            fixed = ('carrier profile set to automatic (AT+QMBNCFG="AutoSel",1) and the modem '
                     "restarted to apply it")
        self._add("carrier_profile", FAIL, summary + (f", the SIM needs {expected}"
                                                      if expected else ""), _t(
            self.lang, "モデムのキャリア設定がSIMの通信事業者と合っていません。LTEでSMSが送れない"
                       "原因になります。--fix で自動選択にしてモデムを再起動します",
            "the modem's carrier profile does not match the SIM's carrier, which stops SMS "
            "over LTE: --fix sets it to automatic and restarts the modem"), fixed)

    def bearer(self) -> None:
        lines = self._ask("AT+CGSMS?")
        match = _CGSMS.search(lines[0]) if lines else None
        names = {0: "packet", 1: "circuit switched", 2: "packet preferred",
                 3: "circuit switched preferred"}
        bearer = names.get(int(match.group(1)), "?") if match else "not reported"
        self._add("bearer", OK, f"SMS bearer (AT+CGSMS): {bearer}")

    def network_time(self) -> None:
        moment = self.device.network_time()
        if moment is None:
            self._add("network_time", WARN, "no time from the network yet", _t(
                self.lang, "携帯電話網から時刻を受け取っていません。インターネットが止まった時に時計を"
                           "合わせられません（登録後しばらくして再確認してください）",
                "the network has not given the time: the clock cannot be set from it while the "
                "internet is down (look again a while after registration)"))
        else:
            self._add("network_time", OK, f"network time {moment.isoformat(timespec='seconds')}")

    def cell_broadcasts(self) -> None:
        """Whether the modem took the ETWS subscription (AT+CSCB, +CNMI bm=2). Only that can
        be seen here: whether the carrier then passes warnings to the AT port shows only when
        one arrives — the test message 4355 on the dashboard (README)."""
        routed, said = self.device.warning_subscription()
        if routed:
            self._add("cell_broadcasts", OK, f"ETWS warnings 4352-4359 subscribed ({said})", _t(
                self.lang, "モデムは緊急地震速報・津波警報の受信設定を受け付けました。実際に届くかは"
                           "SIMの事業者次第です。テスト用の速報（4355）が画面に出るかで確認してください",
                "the modem took the subscription; whether the carrier passes warnings on shows "
                "only when one arrives (the test message 4355 on the dashboard)"))
            return
        detail = getattr(self.device, "cell_broadcast_detail", "") or said
        self._add("cell_broadcasts", WARN, f"ETWS warnings not subscribed ({detail})", _t(
            self.lang, "このモデムは緊急地震速報・津波警報（ETWS）の受信設定を受け付けませんでした。"
                       "SMSの送受信には影響しませんが、速報の受信と当番への連絡はできません",
            "the modem refused the ETWS subscription: sending is not affected, but warnings "
            "will not reach the appliance"))

    def loopback(self, to: str | None) -> None:
        """Send a loop-back SMS to *to* (the SIM's own number when None); the caller waits
        for it to come back (wait_for_loopback) and adds the line."""
        number = to or self.device.own_number()
        if not number:
            self._add("loopback", WARN, "loop-back skipped: the SIM does not know its number", _t(
                self.lang, "SIMに自分の番号が記録されていないため折り返しテストをしませんでした。"
                           "--loopback-to にスタッフの携帯番号を指定してください",
                "loop-back skipped: give --loopback-to a staff phone number"))
            return
        token = f"TSUNAGU-TEST-{secrets.token_hex(3).upper()}"
        try:
            self.device.send_text(number, f"つなぐ 折り返しテスト {token}",
                                  reference=secrets.randbelow(256), request_status_report=False)
        except ModemError as exc:
            self._add("loopback", FAIL, f"loop-back not sent: {exc}", _t(
                self.lang, "テスト送信に失敗しました。上の失敗している項目を先に直してください",
                "the test SMS could not be sent: fix the failing lines above first"))
            return
        self.report.loopback = {"to": number, "token": token}


def loopback_line(report: Report, came_back: bool, lang: str) -> None:
    """The loop-back's line, once the caller has waited for it."""
    if report.loopback is None:
        return
    to = report.loopback["to"]
    if came_back:
        report.lines.append(Line("loopback", OK, f"loop-back SMS to {to} came back"))
    else:
        report.lines.append(Line("loopback", FAIL, f"loop-back SMS to {to} did not come back",
                                 _t(lang, "テストSMSが戻ってきませんでした。送信または受信ができていません。"
                                          "上の項目（IMS・キャリア設定・SMSセンター）を確認してください",
                                    "the test SMS did not come back: sending or receiving "
                                    "fails; check IMS, the carrier profile and the SMS centre")))
