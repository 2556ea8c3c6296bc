"""Time for the daemon's workers: injectable, so pace and back-off are tested without waiting;
and whether the system clock is synchronised (TOTP codes and the audit log's times need it)."""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import shutil
import subprocess
import time
from typing import Callable, Protocol


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


def in_daily_window(at: float, zone, start: dt.time, end: dt.time) -> bool:
    """Whether *at*, in *zone*'s local time, falls within start–end of a day (end not
    included); a window may cross midnight (21:00-08:00)."""
    clock = dt.datetime.fromtimestamp(at, zone).time()
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


# -- is the clock synchronised? -----------------------------------------------------------

TIME_ERROR = 5          # adjtimex(2): the clock is not synchronised
_TIMEX_SIZE = 256       # struct timex is 208 bytes on 64-bit Linux; a zeroed buffer reads it


def timedatectl_synchronised(run: Callable = subprocess.run) -> bool | None:
    """systemd-timedated's answer (NTPSynchronized), or None when it cannot be asked."""
    binary = shutil.which("timedatectl")
    if binary is None:
        return None
    try:
        result = run([binary, "show", "--property=NTPSynchronized", "--value"],
                     capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    answer = result.stdout.strip()
    if result.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


def kernel_synchronised() -> bool | None:
    """The kernel's own state (adjtimex with no change), which NTP daemons keep; None when
    the call is not allowed (a seccomp filter) or not there."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        libc = ctypes.CDLL(path, use_errno=True)
        buffer = ctypes.create_string_buffer(_TIMEX_SIZE)     # modes = 0: read only
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


SYNC_ENV = "TSUNAGU_CLOCK_SYNC"   # "yes" or "no": the answer given (tests, a bench)


def synchronised(readers: tuple[Callable[[], bool | None], ...] = (
        timedatectl_synchronised, kernel_synchronised)) -> bool | None:
    """True or False from $TSUNAGU_CLOCK_SYNC when set, else from the first reader that
    knows; None when none can tell."""
    given = os.environ.get(SYNC_ENV)
    if given in ("yes", "no"):
        return given == "yes"
    for reader in readers:
        answer = reader()
        if answer is not None:
            return answer
    return None
