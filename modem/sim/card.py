"""Who the simulated modem is: a Quectel EC25 (Japanese firmware) holding a docomo SIM."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from .codes import CmeFailure, SIM_NOT_INSERTED, SIM_PIN_REQUIRED, SIM_PUK_REQUIRED
from .storage import MessageStore

MANUFACTURER, MODEL, REVISION = "Quectel", "EC25", "EC25JFAR06A06M4G"
OPERATOR_LONG, OPERATOR_SHORT, OPERATOR_NUMERIC = "NTT DOCOMO", "DOCOMO", "44010"
SMSC = "+819030101950"
SM_CAPACITY, ME_CAPACITY = 50, 255


def luhn_digit(digits: str) -> str:
    """The check digit that makes *digits* + it pass the Luhn test (IMEI, ICCID)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


@dataclass(frozen=True)
class Identity:
    imei: str
    imsi: str
    iccid: str
    number: str         # the SIM's own number, E.164

    @classmethod
    def for_link(cls, link: str) -> Identity:
        """Stable per link, so two simulated modems side by side are two different SIMs."""
        n = zlib.crc32(str(link).encode()) % 10_000_000
        imei = f"8679620{n:07d}"
        iccid = f"898110{n:012d}"
        return cls(imei=imei + luhn_digit(imei), imsi=f"44010{n:010d}",
                   iccid=iccid + luhn_digit(iccid), number=f"+81901{n:07d}")


class SimCard:
    """Presence, PIN state and the SIM's own message store ("SM")."""

    def __init__(self, identity: Identity, *, pin: str | None = None,
                 puk: str = "12345678") -> None:
        self.identity = identity
        self.present = True
        self.pin = pin
        self.puk = puk
        self.attempts_left = 3
        self.unlocked = pin is None
        self.store = MessageStore("SM", SM_CAPACITY)

    def power_up(self) -> None:
        self.unlocked = self.pin is None  # a SIM with a PIN asks again after each power-up

    def state(self) -> str:
        """What AT+CPIN? says after "+CPIN: " (or NOT INSERTED)."""
        if not self.present:
            return "NOT INSERTED"
        if self.attempts_left == 0:
            return "SIM PUK"
        return "READY" if self.unlocked else "SIM PIN"

    @property
    def ready(self) -> bool:
        return self.state() == "READY"

    def require_ready(self) -> None:
        """Raise the +CME ERROR a real modem gives when the SIM cannot be used yet."""
        state = self.state()
        if state == "NOT INSERTED":
            raise CmeFailure(SIM_NOT_INSERTED)
        if state == "SIM PIN":
            raise CmeFailure(SIM_PIN_REQUIRED)
        if state == "SIM PUK":
            raise CmeFailure(SIM_PUK_REQUIRED)

    def enter(self, code: str, new_pin: str | None = None) -> None:
        """AT+CPIN=<pin> or AT+CPIN=<puk>,<newpin>."""
        state = self.state()
        if state == "NOT INSERTED":
            raise CmeFailure(SIM_NOT_INSERTED)
        if state == "READY":
            raise CmeFailure(3)  # operation not allowed: nothing to unlock
        if state == "SIM PUK":
            if code != self.puk or not new_pin:
                raise CmeFailure(16)
            self.pin, self.attempts_left, self.unlocked = new_pin, 3, True
            return
        if code != self.pin:
            self.attempts_left -= 1
            raise CmeFailure(16)  # incorrect password
        self.attempts_left, self.unlocked = 3, True
