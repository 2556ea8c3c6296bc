"""One exception root for the modem package; every error says whether retrying can help."""
from __future__ import annotations


class ModemError(Exception):
    """Root of every modem error. `permanent` errors fail the message; others are retried."""

    permanent: bool = False
    # For an error during a send: whether the PDU had been written to the modem. False: the
    # send failed before (no "> " prompt, port gone), so nothing can have reached the
    # network; True or None (unknown): it may have.
    handed_over: bool | None = None

    def __init__(self, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class MessageTooLong(ModemError, ValueError):
    """The text needs more parts than a phone will join; refused before anything is sent."""

    permanent = True


class ATTimeout(ModemError):
    """No final result code before the deadline; the session stays usable."""


class PortGone(ModemError):
    """The serial port vanished (USB unplugged) or cannot be opened; reopen when it is back."""


class CommandError(ModemError):
    """The modem answered ERROR, +CMS ERROR or +CME ERROR; `code` is the number, if any."""

    def __init__(self, message: str, code: int | None = None, *, permanent: bool = False):
        super().__init__(message, permanent=permanent)
        self.code = code


class CmsError(CommandError):
    """+CMS ERROR: an SMS command failed (TS 27.005 3.2.5)."""


class CmeError(CommandError):
    """+CME ERROR: an equipment command failed (TS 27.007 9.2), e.g. 10 SIM not inserted."""


CMS_INVALID_INDEX = 321   # TS 27.005 3.2.5: "invalid memory index" (nothing stored there)

# TS 27.005 3.2.5: +CMS codes where a later attempt can succeed (network, memory, busy);
# the others (bad number, barred, invalid PDU…) fail the same way every time.
# SIM trouble (310-318) is our modem's problem, not the recipient's: another modem can send it.
TEMPORARY_CMS = {300, 310, 311, 312, 313, 314, 315, 316, 317, 318, 320, 321, 322, 330, 331,
                 332, 340, 500, 512, 513, 514, 515}


def error_from(line: str) -> CommandError:
    """The typed error for a final result code that says no."""
    value = line.split(":", 1)[1].strip() if ":" in line else ""
    code = int(value) if value.isdigit() else None
    if line.startswith("+CMS ERROR:"):
        return CmsError(line, code, permanent=code not in TEMPORARY_CMS)
    if line.startswith("+CME ERROR:"):
        return CmeError(line, code, permanent=False)
    return CommandError(line, None, permanent=False)
