"""One exception root for the modem package; every error says whether retrying can help."""
from __future__ import annotations


class ModemError(Exception):
    """Root of every modem error. `permanent` errors fail the message; others are retried."""

    permanent: bool = False

    def __init__(self, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class MessageTooLong(ModemError, ValueError):
    """The text needs more parts than a phone will join; refused before anything is sent."""

    permanent = True
