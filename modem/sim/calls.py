"""Voice calls on the simulated modem: the commands a real EC25 or SIM7600 answers, so voice
features (calling a patient who does not read SMS) can be built and tested on it later.

ATD<number>; dials (OK at once; the far end answers or not later), ATA answers an incoming
call, ATH hangs up (with AT+CVHU=0 it ends a voice call, as Quectel documents), AT+CLCC
lists calls (TS 27.007 7.18), AT+CLIP=1 adds the caller's number after each RING (7.6). The
far end hanging up, or a call nobody answers, ends in NO CARRIER; a busy phone in BUSY, a
phone switched off or out of reach in NO CARRIER before it ever rings. Each call and how it
ended is in the network log ("call", "call_end"). A mixin of SimulatedModem.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .codes import Failure, bad_parameters

# <stat> of +CLCC
ACTIVE, DIALING, ALERTING, INCOMING = 0, 2, 3, 4
RING_EVERY = 3.0      # seconds between two RINGs of an incoming call
RING_GIVE_UP = 30.0   # the caller gives up after this long (and the network, on a call out)
ANSWER_AFTER = 1.0    # a phone set to "answer" picks up after this long
REFUSED_AFTER = 0.5   # a busy or unreachable phone: the network says so after this long
CALL_OUTCOMES = ("answer", "no_answer", "busy", "unreachable")


@dataclass
class Call:
    id: int
    incoming: bool
    number: str
    stat: int

    def line(self) -> str:
        kind = 145 if self.number.startswith("+") else 129
        return (f'+CLCC: {self.id},{int(self.incoming)},{self.stat},0,0,'
                f'"{self.number}",{kind}')


class VoiceCalls:
    """ATD…;, ATA, ATH, AT+CLCC, AT+CLIP, AT+CVHU and RING / NO CARRIER."""

    def _at_clip(self, arg):
        if arg == "?":
            return [f"+CLIP: {self.clip},1"]
        if arg == "=?":
            return ["+CLIP: (0,1)"]
        if arg not in ("0", "1"):
            raise bad_parameters()
        self.clip = int(arg)
        return []

    def _at_crc(self, arg):
        """+CRC=1: an incoming call rings as +CRING: VOICE instead of RING (TS 27.007 6.11)."""
        if arg == "?":
            return [f"+CRC: {self.crc}"]
        if arg == "=?":
            return ["+CRC: (0,1)"]
        if arg not in ("0", "1"):
            raise bad_parameters()
        self.crc = int(arg)
        return []

    def _at_cvhu(self, arg):
        if arg == "?":
            return ["+CVHU: 0"]
        if arg == "=?":
            return ["+CVHU: (0,1)"]
        if arg not in ("0", "1"):
            raise bad_parameters()
        return []

    def _at_clcc(self, arg):
        if arg == "=?":
            return []
        return [call.line() for call in self.calls]

    def _dial(self, rest: str) -> list[str]:
        number = rest.strip()
        if not number.endswith(";"):
            raise Failure()  # a data call: not simulated (and never used by Tsunagu)
        number = number[:-1].strip()
        if not number or not self.registered:
            raise Failure()
        outcome = self.network.call_outcomes.get(number, "answer")
        refused = outcome in ("busy", "unreachable")
        call = Call(next(self._call_ids), False, number, DIALING if refused else ALERTING)
        self.calls.append(call)
        self.network.log({"event": "call", "t": time.time(), "to": number})
        if outcome == "answer":
            self.after(ANSWER_AFTER, lambda: self._far_end_answers(call.id))
        elif refused:
            result = "BUSY" if outcome == "busy" else "NO CARRIER"
            self.after(REFUSED_AFTER, lambda: self._call_ended(call.id, result))
        else:
            self.after(RING_GIVE_UP, lambda: self._call_ended(call.id))
        return []

    def _far_end_answers(self, call_id: int) -> None:
        for call in self.calls:
            if call.id == call_id and call.stat == ALERTING:
                call.stat = ACTIVE

    def _answer(self) -> list[str]:
        ringing = [c for c in self.calls if c.stat == INCOMING]
        if not ringing:
            self._write("\r\nNO CARRIER\r\n")
            return []
        ringing[0].stat = ACTIVE
        return []

    def _hang_up(self) -> list[str]:
        for call in self.calls:
            self._log_end(call, "hung_up")
        self.calls = []
        return []

    def _call_ended(self, call_id: int, result: str = "NO CARRIER") -> None:
        """The far end hangs up, nobody answered, or the call could not be made: it is gone."""
        ended = [c for c in self.calls if c.id == call_id]
        if ended:
            self.calls = [c for c in self.calls if c.id != call_id]
            self._log_end(ended[0], result)
            self._urc(result)

    def _log_end(self, call: Call, how: str) -> None:
        self.network.log({"event": "call_end", "t": time.time(), "number": call.number,
                          "incoming": call.incoming, "how": how,
                          "answered": call.stat == ACTIVE})

    # -- control ---------------------------------------------------------------------------
    def ring(self, number: str) -> int:
        """A phone calls this SIM; returns the call's id. RING (and +CLIP) until answered,
        hung up, or the caller gives up."""
        with self._lock:
            call = Call(next(self._call_ids), True, number, INCOMING)
            self.calls.append(call)
            self._ring(call.id, time.monotonic() + RING_GIVE_UP)
            return call.id

    def _ring(self, call_id: int, give_up_at: float) -> None:
        call = next((c for c in self.calls if c.id == call_id), None)
        if call is None or call.stat != INCOMING:
            return
        if time.monotonic() >= give_up_at:
            return self._call_ended(call_id)
        self._urc("+CRING: VOICE" if self.crc else "RING")
        if self.clip:
            kind = 145 if call.number.startswith("+") else 129
            self._urc(f'+CLIP: "{call.number}",{kind},"",,"",0')
        self.after(RING_EVERY, lambda: self._ring(call_id, give_up_at))

    def hang_up_far_end(self) -> None:
        """The other phone hangs up every call."""
        with self._lock:
            for call in list(self.calls):
                self._call_ended(call.id)

    def set_call_outcome(self, number: str, outcome: str) -> None:
        """What a call to *number* does: "answer" (after a second), "no_answer" (it rings
        until the network gives up), "busy" or "unreachable" (switched off, out of reach)."""
        if outcome not in CALL_OUTCOMES:
            raise ValueError(f"call outcome must be one of {', '.join(CALL_OUTCOMES)}, "
                             f"got {outcome!r}")
        with self._lock:
            self.network.call_outcomes[number] = outcome
