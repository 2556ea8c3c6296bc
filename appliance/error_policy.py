"""What a failed send means, from the standards: retry it, give it to another modem, or fail
the recipient — and the reason staff read, in Japanese and English.

One table for every error a send can meet, so the worker, the delivery-report matcher, the
broadcast page, the call list and the CLI all say the same thing:

- `+CMS ERROR` 1–127: RP causes of the network (TS 24.011 annex E.2, mobile-originated SM
  transfer); 128–255: TP-FCS of the SMSC (TS 23.040 9.2.3.22); 300–340 and 500: the modem
  and its SIM (TS 27.005 3.2.5); 512 and up: manufacturer-specific (Quectel, SIMCom);
- `+CME ERROR` during a send (TS 27.007 9.2): the modem or its SIM;
- TP-ST of a status report (TS 23.040 9.2.3.15): what became of a message the SMSC took;
- what the driver itself knows: no `> ` prompt (nothing handed over), no answer after the
  PDU (the modem may have sent it), the port gone.

Actions:

- RETRY — it could not go now. Two kinds:
  - the network's state (congestion after an earthquake is the likely case: 38, 41, 42,
    47…): nothing to do with this patient, so no back-off of their own — the message goes
    behind those already due, and it is the modem's run of failures that spaces the
    retries out (see the dispatcher), so a network that refuses everything is not
    hammered while one that refuses one send in five costs no idle time; never given up
    (`give_up` False) — only a cancel stops it;
  - this recipient's (`personal`: their phone is out of service) or a cause we do not know
    (`give_up`): the recipient waits out a back-off of its own, doubling, while the modem
    sends to others; an unknown cause is given up after `max_attempts`;
- ELSEWHERE — this modem or its SIM cannot send (no SIM, no network, no SMS centre): the
  message goes back to the queue for any modem at once, the attempt not held against it,
  and this modem pauses claiming so another can take it;
- FAIL — the same every time (the number does not exist, barred, a malformed PDU): the
  recipient fails at once, with the reason, and goes on the call list.

An unknown code is RETRY with give_up True: tried `max_attempts` times, then failed.
"""
from __future__ import annotations

from dataclasses import dataclass

RETRY, ELSEWHERE, FAIL = "retry", "elsewhere", "fail"


@dataclass(frozen=True)
class Verdict:
    action: str
    key: str            # stored in recipients.reason: "cms:42", "report:0x41", "no_prompt"…
    ja: str
    en: str
    give_up: bool = False   # counts towards max_attempts (RETRY only)
    personal: bool = False  # RETRY: the cause is the recipient's, who backs off alone

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


def _v(action: str, ja: str, en: str, *, give_up: bool = False, personal: bool = False):
    return (action, ja, en, give_up, personal or give_up)


_NUMBER = "番号が使われていないか、誤っています（電話で連絡してください）"
_BARRED = "この番号へのSMSは送れません（通信会社が拒否しました。電話で連絡してください）"
_NET_TMP = "携帯電話網が一時的に使えません（自動で送り直します）"
_CONGESTED = "携帯電話網が混雑しています（自動で送り直します）"
_PHONE_OFF = "相手の電話につながりません（電源が切れているか圏外です。自動で送り直します）"
_REFUSED = "相手の電話または通信会社が受け取りを拒否しました（電話で連絡してください）"
_BAD_PDU = "このメッセージの形式を通信会社が受け付けません（本文を短くして送り直してください）"
_SIM = "このモデムのSIMカードの問題で送れません（別のモデムで送ります）"
_MODEM = "このモデムが送信できない状態です（別のモデムで送ります）"
_SMSC = "このSIMのSMSセンター番号が設定されていません（別のモデムで送ります。モデム診断を実行してください）"
_NO_SERVICE = "このモデムが圏外です（別のモデムで送ります）"
_UNKNOWN = "モデムが送信できませんでした（自動で送り直します）"

# +CMS ERROR codes. 1–127: TS 24.011 annex E.2; 128–255: TS 23.040 9.2.3.22 (TP-FCS);
# 300–: TS 27.005 3.2.5; 512–: Quectel EC2x / SIMCom SIM7600 AT manuals.
CMS: dict[int, tuple] = {
    1: _v(FAIL, _NUMBER, "unassigned (unallocated) number"),
    8: _v(FAIL, _BARRED, "operator determined barring"),
    10: _v(FAIL, _BARRED, "call barred"),
    17: _v(RETRY, _NET_TMP, "network failure"),
    21: _v(FAIL, _REFUSED, "short message transfer rejected"),
    22: _v(RETRY, _CONGESTED, "congestion"),
    27: _v(RETRY, _PHONE_OFF, "destination out of service", personal=True),
    28: _v(FAIL, _NUMBER, "unidentified subscriber"),
    29: _v(FAIL, _REFUSED, "facility rejected"),
    30: _v(FAIL, _NUMBER, "unknown subscriber"),
    38: _v(RETRY, _NET_TMP, "network out of order"),
    41: _v(RETRY, _NET_TMP, "temporary failure"),
    42: _v(RETRY, _CONGESTED, "congestion"),
    47: _v(RETRY, _CONGESTED, "resources unavailable"),
    50: _v(ELSEWHERE, "このSIMはSMSの契約がありません（別のモデムで送ります。SMS対応のSIMか確認してください）",
           "requested facility not subscribed"),
    69: _v(ELSEWHERE, _MODEM, "requested facility not implemented"),
    81: _v(RETRY, _UNKNOWN, "invalid short message transfer reference value", give_up=True),
    95: _v(FAIL, _BAD_PDU, "semantically incorrect message"),
    96: _v(FAIL, _BAD_PDU, "invalid mandatory information"),
    97: _v(FAIL, _BAD_PDU, "message type non-existent or not implemented"),
    98: _v(RETRY, _UNKNOWN, "message not compatible with short message protocol state",
           give_up=True),
    99: _v(FAIL, _BAD_PDU, "information element non-existent or not implemented"),
    111: _v(RETRY, _UNKNOWN, "protocol error, unspecified", give_up=True),
    127: _v(RETRY, _NET_TMP, "interworking, unspecified", give_up=True),
    128: _v(FAIL, _BAD_PDU, "telematic interworking not supported"),
    129: _v(FAIL, _BAD_PDU, "short message type 0 not supported"),
    130: _v(FAIL, _BAD_PDU, "cannot replace short message"),
    143: _v(FAIL, _BAD_PDU, "unspecified TP-PID error"),
    144: _v(FAIL, _BAD_PDU, "data coding scheme (alphabet) not supported"),
    145: _v(FAIL, _BAD_PDU, "message class not supported"),
    159: _v(FAIL, _BAD_PDU, "unspecified TP-DCS error"),
    176: _v(FAIL, _BAD_PDU, "TPDU not supported"),
    192: _v(RETRY, _CONGESTED, "SC busy"),
    193: _v(ELSEWHERE, _SMSC, "no SC subscription"),
    194: _v(RETRY, _NET_TMP, "SC system failure"),
    195: _v(FAIL, _NUMBER, "invalid SME address"),
    196: _v(FAIL, _BARRED, "destination SME barred"),
    197: _v(FAIL, _REFUSED, "SM rejected: duplicate SM"),
    198: _v(FAIL, _BAD_PDU, "TP-VPF not supported"),
    199: _v(FAIL, _BAD_PDU, "TP-VP not supported"),
    208: _v(ELSEWHERE, _SIM, "(U)SIM SMS storage full"),
    209: _v(ELSEWHERE, _SIM, "no SMS storage capability in (U)SIM"),
    210: _v(ELSEWHERE, _MODEM, "error in MS"),
    211: _v(ELSEWHERE, _MODEM, "memory capacity exceeded"),
    212: _v(RETRY, _UNKNOWN, "(U)SIM application toolkit busy", give_up=True),
    213: _v(ELSEWHERE, _SIM, "(U)SIM data download error"),
    255: _v(RETRY, _UNKNOWN, "unspecified error cause", give_up=True),
    300: _v(ELSEWHERE, _MODEM, "ME failure"),
    301: _v(ELSEWHERE, _MODEM, "SMS service of ME reserved"),
    302: _v(ELSEWHERE, _MODEM, "operation not allowed"),
    303: _v(ELSEWHERE, _MODEM, "operation not supported"),
    304: _v(FAIL, _BAD_PDU, "invalid PDU mode parameter"),
    305: _v(FAIL, _BAD_PDU, "invalid text mode parameter"),
    310: _v(ELSEWHERE, _SIM, "(U)SIM not inserted"),
    311: _v(ELSEWHERE, _SIM, "(U)SIM PIN required"),
    312: _v(ELSEWHERE, _SIM, "PH-(U)SIM PIN required"),
    313: _v(ELSEWHERE, _SIM, "(U)SIM failure"),
    314: _v(RETRY, "SIMカードが応答中です（自動で送り直します）", "(U)SIM busy"),
    315: _v(ELSEWHERE, _SIM, "(U)SIM wrong"),
    316: _v(ELSEWHERE, _SIM, "(U)SIM PUK required"),
    317: _v(ELSEWHERE, _SIM, "(U)SIM PIN2 required"),
    318: _v(ELSEWHERE, _SIM, "(U)SIM PUK2 required"),
    320: _v(RETRY, _UNKNOWN, "memory failure", give_up=True),
    321: _v(RETRY, _UNKNOWN, "invalid memory index", give_up=True),
    322: _v(RETRY, _UNKNOWN, "memory full", give_up=True),
    330: _v(ELSEWHERE, _SMSC, "SMSC address unknown"),
    331: _v(ELSEWHERE, _NO_SERVICE, "no network service"),
    332: _v(RETRY, _NET_TMP, "network timeout"),
    340: _v(RETRY, _UNKNOWN, "no +CNMA acknowledgement expected", give_up=True),
    500: _v(RETRY, _UNKNOWN, "unknown error", give_up=True),
    # Quectel EC2x (SMS AT manual, "Summary of CMS ERROR Codes").
    512: _v(ELSEWHERE, _SIM, "SIM not ready"),
    513: _v(FAIL, _BAD_PDU, "message length exceeds"),
    514: _v(FAIL, _BAD_PDU, "invalid request parameters"),
    515: _v(RETRY, _UNKNOWN, "ME storage failure", give_up=True),
    517: _v(ELSEWHERE, _MODEM, "invalid service mode"),
    528: _v(RETRY, _UNKNOWN, "more message to send state error", give_up=True),
    529: _v(ELSEWHERE, _MODEM, "MO SMS is not allowed"),
    530: _v(ELSEWHERE, _NO_SERVICE, "GPRS is suspended"),
    531: _v(RETRY, _UNKNOWN, "ME storage full", give_up=True),
}

# +CME ERROR during a send (TS 27.007 9.2): the equipment, never the recipient.
CME: dict[int, tuple] = {
    3: _v(ELSEWHERE, _MODEM, "operation not allowed"),
    4: _v(ELSEWHERE, _MODEM, "operation not supported"),
    10: _v(ELSEWHERE, _SIM, "SIM not inserted"),
    11: _v(ELSEWHERE, _SIM, "SIM PIN required"),
    12: _v(ELSEWHERE, _SIM, "SIM PUK required"),
    13: _v(ELSEWHERE, _SIM, "SIM failure"),
    14: _v(RETRY, "SIMカードが応答中です（自動で送り直します）", "SIM busy"),
    15: _v(ELSEWHERE, _SIM, "SIM wrong"),
    30: _v(ELSEWHERE, _NO_SERVICE, "no network service"),
    31: _v(RETRY, _NET_TMP, "network timeout"),
    32: _v(ELSEWHERE, _NO_SERVICE, "network not allowed, emergency calls only"),
}

# TP-ST of a status report (TS 23.040 9.2.3.15) for a message the SMSC took and could not
# deliver. The SMSC has stopped trying: the recipient is failed, with why, and is on the
# call list. (0x20–0x3F, "still trying", is not a failure and never reaches here.)
REPORT: dict[int, tuple] = {
    0x40: _v(FAIL, "通信会社で配信に失敗しました（電話で連絡してください）", "remote procedure error"),
    0x41: _v(FAIL, "相手の電話がこのSMSを受け取れません（電話で連絡してください）", "incompatible destination"),
    0x42: _v(FAIL, _REFUSED, "connection rejected by SME"),
    0x43: _v(FAIL, "相手の電話につながりません（番号を確認し、電話で連絡してください）", "not obtainable"),
    0x44: _v(FAIL, "通信会社で配信に失敗しました（電話で連絡してください）", "quality of service not available"),
    0x45: _v(FAIL, "通信会社で配信に失敗しました（電話で連絡してください）", "no interworking available"),
    0x46: _v(FAIL, "相手の電話が長い間つながらず、配信の期限が切れました（電話で連絡してください）",
             "SM validity period expired"),
    0x47: _v(FAIL, "通信会社で配信が取り消されました（電話で連絡してください）", "SM deleted by originating SME"),
    0x48: _v(FAIL, "通信会社で配信が取り消されました（電話で連絡してください）", "SM deleted by SC administration"),
    0x49: _v(FAIL, "通信会社で配信に失敗しました（電話で連絡してください）", "SM does not exist"),
    0x60: _v(FAIL, "携帯電話網が混雑していて配信できませんでした（電話で連絡してください）",
             "congestion (SC stopped trying)"),
    0x61: _v(FAIL, "相手の電話が応答しないため配信できませんでした（電話で連絡してください）", "SME busy"),
    0x62: _v(FAIL, "相手の電話が応答しないため配信できませんでした（電話で連絡してください）",
             "no response from SME"),
    0x63: _v(FAIL, _REFUSED, "service rejected"),
    0x64: _v(FAIL, "通信会社で配信に失敗しました（電話で連絡してください）", "quality of service not available"),
    0x65: _v(FAIL, "相手の電話のエラーで配信できませんでした（電話で連絡してください）", "error in SME"),
}

# What the driver knows of a send that did not reach the network.
DRIVER: dict[str, tuple] = {
    # No "> " prompt: the PDU was never written, so nothing was handed to the modem.
    "no_prompt": _v(ELSEWHERE, "モデムが送信の準備に応じませんでした（送っていません。別のモデムか、あとで送り直します）",
                    "the modem gave no prompt: nothing was sent"),
    "port_gone_before": _v(ELSEWHERE, "モデムが外れました（送っていません。つながり直したら送ります）",
                           "the port vanished before the message was handed over: nothing was sent"),
    "encode": _v(FAIL, "本文をSMSにできませんでした（本文を確認してください）",
                 "the text cannot be encoded as SMS"),
    "unknown": _v(RETRY, _UNKNOWN, "the modem refused the message", give_up=True),
}

# Reasons that are not errors of one send: states staff should understand.
NOTES: dict[str, tuple[str, str]] = {
    "uncertain": ("送信中にモデムの応答が途絶えました。届いたか分かりません（必要なら「再送」してください）",
                  "the modem stopped answering during the send: it may or may not have arrived"),
    "uncertain_resent": ("送信中にモデムの応答が途絶えたため、念のため送り直しました",
                         "the modem stopped answering during the send: sent again to be sure"),
    "gave_up": ("何度送っても送れませんでした（電話で連絡してください）",
                "it could not be sent after repeated attempts"),
    "resumed": ("長いメッセージの途中で止まったため、残りの部分を送りました",
                "a long message stopped half-way: the remaining parts were sent"),
    "whole_again": ("長いメッセージの途中で止まったため、全体を送り直しました",
                    "a long message stopped half-way: the whole message was sent again"),
}


def _verdict(table: dict, code, prefix: str, fallback: str) -> Verdict:
    key = f"{prefix}:{code:#04x}" if prefix == "report" else f"{prefix}:{code}"
    return Verdict(*_entry(table.get(code) or DRIVER[fallback], key))


def _entry(entry: tuple, key: str) -> tuple:
    action, ja, en, give_up, personal = entry
    return action, key, ja, en, give_up, personal


def for_send_error(exc) -> Verdict:
    """The verdict on a +CMS/+CME ERROR (or a plain ERROR) the modem answered to AT+CMGS."""
    from modem.errors import CmeError, CmsError
    code = getattr(exc, "code", None)
    if isinstance(exc, CmsError) and code is not None:
        return _verdict(CMS, code, "cms", "unknown")
    if isinstance(exc, CmeError) and code is not None:
        return _verdict(CME, code, "cme", "unknown")
    return Verdict(*_entry(DRIVER["unknown"], "error"))


def for_report(status: int) -> Verdict:
    """The verdict on a status report that says the message could not be delivered."""
    if status in REPORT:
        return _verdict(REPORT, status, "report", "unknown")
    return Verdict(FAIL, f"report:{status:#04x}", "通信会社で配信に失敗しました（電話で連絡してください）",
                   f"the network could not deliver it (status {status:#04x})")


def for_driver(what: str) -> Verdict:
    return Verdict(*_entry(DRIVER[what], what))


def describe(key: str | None, lang: str = "ja") -> str | None:
    """The reason staff read for a stored key (recipients.reason); None for no key."""
    if not key:
        return None
    prefix, _sep, value = key.partition(":")
    index = 0 if lang == "ja" else 1
    try:
        if prefix == "cms":
            entry = CMS.get(int(value))
        elif prefix == "cme":
            entry = CME.get(int(value))
        elif prefix == "report":
            verdict = for_report(int(value, 16))
            entry = (verdict.action, verdict.ja, verdict.en)
        elif key in DRIVER:
            entry = DRIVER[key]
        elif key in NOTES:
            return NOTES[key][index]
        else:
            entry = None
    except ValueError:
        entry = None
    if entry is None:
        unknown = DRIVER["unknown"]
        return unknown[1] if lang == "ja" else f"{unknown[2]} ({key})"
    return entry[1 + index]
