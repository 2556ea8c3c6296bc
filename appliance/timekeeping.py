"""The system clock, kept right when the internet is down.

A Raspberry Pi has no battery clock: after a power cut it starts at the time it last saved,
and with the internet down NTP cannot correct it. Schedules, the daily budget, TOTP and the
audit log all trust that clock. The cellular network gives the modem the time (NITZ), so
when NTP is not synchronised and the clock is more than `[time] max_drift` seconds off the
network's time, the daemon sets it through `[time] setter` — a command that starts a
one-shot unit allowed to change the clock and nothing else; the daemon itself may not
(ProtectClock, no capabilities). Each correction is written to the audit log, and
`clock_status` says where the time comes from: ntp, network or unsynchronised (check and
the dashboard show it, and warn while it is unsynchronised).
"""
from __future__ import annotations

import logging
import shlex
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from . import audit
from . import clock as clock_mod
from .config import TimeConfig
from .db import write

log = logging.getLogger(__name__)

SOURCES = ("ntp", "network", "unsynchronised")


def command_setter(command: str, run=subprocess.run) -> Callable[[float], None]:
    """A clock setter that runs *command* with {epoch} replaced; raises on failure."""
    def set_clock(epoch: float) -> None:
        argv = [part.replace("{epoch}", str(int(epoch))) for part in shlex.split(command)]
        result = run(argv, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise OSError(f"{argv[0]} exited {result.returncode}: "
                          f"{(result.stderr or result.stdout).strip()[:200]}")
    return set_clock


@dataclass(frozen=True)
class TimeStatus:
    source: str                 # ntp | network | unsynchronised
    offset: float | None        # network time minus the system clock, seconds, when known
    detail: str
    corrected: bool = False


class ClockKeeper:
    """Shared by the workers: each offers its modem's network time when `due()`."""

    def __init__(self, config: TimeConfig, clock, *,
                 ntp_state: Callable[[], bool | None] = clock_mod.synchronised,
                 set_clock: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self._ntp_state = ntp_state
        self._set_clock = set_clock or (command_setter(config.setter) if config.setter else None)
        self._lock = threading.Lock()
        self._next_check = 0.0
        self.last: TimeStatus | None = None

    def due(self) -> bool:
        return self.clock.now() >= self._next_check

    def observe(self, db, modem: str, network_now: datetime | None) -> TimeStatus | None:
        """Decide where the time comes from and correct the clock if it must; None when
        another worker looked a moment ago."""
        with self._lock:
            now = self.clock.now()
            if now < self._next_check:
                return None
            self._next_check = now + self.config.check_interval
            status = self._decide(modem, now, network_now)
            with write(db) as conn:
                conn.execute(
                    "INSERT INTO clock_status (name, source, offset_seconds, detail, modem, "
                    "checked_at) VALUES ('system', ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE "
                    "SET source = excluded.source, offset_seconds = excluded.offset_seconds, "
                    "detail = excluded.detail, modem = excluded.modem, "
                    "checked_at = excluded.checked_at",
                    [status.source, status.offset, status.detail, modem, self.clock.now()])
                if status.corrected:
                    audit.record(conn, "daemon", "clock_set", modem=modem,
                                 offset_seconds=round(status.offset or 0, 1),
                                 clock_was=round(now, 1),
                                 set_to=round(now + (status.offset or 0), 1))
            if self.last is None or (self.last.source, self.last.corrected) != \
                    (status.source, status.corrected):
                log.info("clock: %s (%s)", status.source, status.detail)
            self.last = status
            return status

    def _decide(self, modem: str, now: float, network_now: datetime | None) -> TimeStatus:
        synchronised = self._ntp_state()
        if synchronised:
            return TimeStatus("ntp", None, "NTP synchronised")
        if network_now is None:
            return TimeStatus("unsynchronised", None,
                              "NTP not synchronised and the network gave no time yet")
        offset = network_now.timestamp() - now
        if abs(offset) <= self.config.max_drift:
            return TimeStatus("network", offset, f"within {abs(offset):.0f} s of {modem}'s "
                              "network time")
        if synchronised is None:
            # We cannot tell whether NTP keeps the clock: never overrule it on a guess.
            return TimeStatus("unsynchronised", offset,
                              f"{offset:+.0f} s off {modem}'s network time; NTP state unknown, "
                              "clock left alone")
        if self._set_clock is None:
            return TimeStatus("unsynchronised", offset,
                              f"{offset:+.0f} s off {modem}'s network time; no [time] setter")
        try:
            self._set_clock(now + offset)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("clock: setting it to the network's time failed: %s", exc)
            return TimeStatus("unsynchronised", offset,
                              f"{offset:+.0f} s off {modem}'s network time; setting it failed: "
                              f"{exc}")
        log.warning("clock: set from %s's network time (%+.0f s)", modem, offset)
        return TimeStatus("network", offset, f"set from {modem}'s network time "
                          f"({offset:+.0f} s)", corrected=True)


def read_status(conn) -> dict | None:
    """The clock_status row, for check and the dashboard."""
    row = conn.execute("SELECT source, offset_seconds, detail, modem, checked_at FROM "
                       "clock_status WHERE name = 'system'").fetchone()
    return dict(row) if row is not None else None
