"""Time for the daemon's workers: injectable, so pace and back-off are tested without waiting."""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds (UTC), as stored in every *_at column."""

    def sleep(self, seconds: float) -> None:
        """Let *seconds* pass."""


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
