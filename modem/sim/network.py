"""The cellular network behind the simulated modem: registration, signal, what each phone
received (the JSONL network log), delivery outcomes per number and injected send faults."""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import pdu

# <stat> of +CREG / +CGREG / +CEREG (TS 27.007 7.2).
REGISTRATION = {"not_registered": 0, "home": 1, "searching": 2, "denied": 3, "roaming": 5}
# TP-ST of the status report each outcome produces (TS 23.040 9.2.3.15); 'none' sends no report.
OUTCOME_STATUS = {"delivered": 0x00, "pending": 0x20, "failed": 0x41}
OUTCOMES = (*OUTCOME_STATUS, "none")


def same_number(a: str, b: str) -> bool:
    """"+819012345678" and "819012345678" are the same phone."""
    return a.lstrip("+") == b.lstrip("+")


@dataclass
class SendFault:
    """Sends fail with +CMS ERROR *code*: to *number* (or any), at *rate* (or always),
    for the next *remaining* matching sends (or until cleared)."""
    code: int
    number: str | None = None
    rate: float | None = None
    remaining: int | None = None


@dataclass(frozen=True)
class PreparedSubmit:
    """An SMS-SUBMIT the network has received but not yet acknowledged (see prepare())."""
    submit: pdu.Submit
    part: int
    parts: int
    log_fields: str            # its fields in the log line, JSON without the braces
    as_received: pdu.Deliver   # what the phone will reassemble


class Network:
    def __init__(self, *, log: str | Path | None = None, seed: int = 0, own_number: str = "",
                 clock=time.time) -> None:
        self.registration = "home"
        self.reject_cause: int | None = None  # EMM cause given with a denied registration
        self.ims_available = True   # Japanese LTE: SMS goes over IMS
        self.time_offset = 0.0      # the network's clock against this machine's, seconds
        self.sms_bearer = 1         # +CGSMS: a modem's default (circuit switched)
        self.call_outcomes: dict[str, str] = {}
        self.csq = 24
        self.own_number = own_number
        self.outcomes: dict[str, str] = {}
        self.faults: list[SendFault] = []
        self.log_path = Path(log) if log else None
        self._log_file = open(self.log_path, "a", encoding="utf-8") if self.log_path else None
        self._log_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._clock = clock
        self._reassembler = pdu.Reassembler()
        self._messages: list[dict] = []
        self._inbound_reference = 0
        self.submits = 0

    # -- outbound --------------------------------------------------------------------------
    def outcome_for(self, number: str) -> str:
        for known, outcome in self.outcomes.items():
            if same_number(known, number):
                return outcome
        return "delivered"

    def fault_for(self, number: str) -> int | None:
        """The +CMS ERROR code this send fails with, if a fault applies to it."""
        for fault in list(self.faults):
            if fault.number is not None and not same_number(fault.number, number):
                continue
            if fault.rate is not None and self._rng.random() >= fault.rate:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
            return fault.code
        return None

    def prepare(self, submit: pdu.Submit, pdu_hex: str) -> PreparedSubmit:
        """What the log will say of *submit* once accepted, made while the modem "sends"
        (its send delay), so that accepting it costs no more than writing one line."""
        part, parts = (submit.concat.seq, submit.concat.total) if submit.concat else (1, 1)
        ref = submit.concat.reference if submit.concat else None
        fields = json.dumps({"to": submit.number, "pdu": pdu_hex, "part": part, "parts": parts,
                             "ref": ref}, ensure_ascii=False)[1:-1]
        return PreparedSubmit(submit, part, parts, fields,
                              pdu.Deliver(sender=submit.number, text=submit.text, sent_at=None,
                                          concat=submit.concat))

    def submitted(self, accepted: PreparedSubmit, mr: int, *, at: float | None = None
                  ) -> dict | None:
        """One SMS-SUBMIT accepted (at *at*, by default now); returns the whole message once
        its last part is in."""
        self.submits += 1
        at = self._clock() if at is None else at
        self.log_line(f'{{"event": "submit", "t": {at!r}, {accepted.log_fields}, '
                      f'"mr": {mr}}}')
        number = accepted.submit.number
        whole = self._reassembler.add(number, accepted.as_received)
        if whole is None:
            return None
        message = {"event": "message", "t": at, "to": number, "text": whole,
                   "parts": accepted.parts, "from": self.own_number,
                   "outcome": self.outcome_for(number)}
        self._messages.append(message)
        self.log(message)
        return message

    def messages(self) -> list[dict]:
        return [dict(m) for m in self._messages]

    # -- inbound ---------------------------------------------------------------------------
    def next_inbound_reference(self) -> int:
        self._inbound_reference = (self._inbound_reference + 1) % 256
        return self._inbound_reference

    # -- the log ---------------------------------------------------------------------------
    def log(self, event: dict) -> None:
        self.log_line(json.dumps(event, ensure_ascii=False))

    def log_line(self, line: str) -> None:
        """One JSON object, already serialised, as one line of the log."""
        if self._log_file is None:
            return
        with self._log_lock:
            self._log_file.write(line + "\n")
            self._log_file.flush()  # readers (tests, the demo) see whole lines at once

    def close(self) -> None:
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def describe(self) -> dict:
        return {"registration": self.registration, "csq": self.csq,
                "outcomes": dict(self.outcomes), "faults": [asdict(f) for f in self.faults],
                "submits": self.submits, "messages": len(self._messages)}
