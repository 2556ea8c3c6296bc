"""One guard for every job the daemon's main thread runs: a failing job never stops the loop.

The main thread keeps time for the whole appliance — the heartbeat, requests from other
processes, scheduled broadcasts, follow-ups. Any of them can fail: a bug, a bad row saved by
an older version, a database that refuses a write. Each runs under `Jobs.run()`:

- an exception is logged with its traceback, recorded in the daemon_jobs table (what the
  dashboard and `tsunagu check` read) and the loop goes on with the next job;
- a job that fails again and again is paused, doubling from PAUSE_FIRST up to PAUSE_MAX, so
  it cannot fill the log or hold the database in a tight loop; it stays flagged until a run
  works again;
- the record is written only when a job fails and when it works again, never on every run;
- a full or read-only disk or a damaged database (appliance.storage) is not the job's fault
  and cannot be recorded in the database: it goes to the daemon's storage watch (its status
  file, a log line a minute), and the job is neither paused nor counted, so it runs again
  at its own pace and works the moment the disk takes writes again.

The sending itself is not a job here: the modem workers have their own loop and only the
modem can stop them.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlite_utils

from .db import write
from .storage import Watch

log = logging.getLogger(__name__)

PAUSE_AFTER = 3        # failures in a row before a job is paused…
PAUSE_FIRST = 10.0     # …first for this many seconds, doubling…
PAUSE_MAX = 300.0      # …up to this
ERROR_MAX = 500        # characters of an error kept for staff

T = TypeVar("T")


@dataclass
class JobState:
    failures: int = 0
    paused_until: float = 0.0
    recorded: bool = False      # the database says this job failed (until it works again)


@dataclass(frozen=True)
class JobProblem:
    """A job that failed, as staff see it (dashboard, check)."""
    name: str
    failures: int
    error: str
    at: float
    paused_until: float | None


def describe(exc: BaseException) -> str:
    """An error in one line, for the daemon_jobs row and the schedules page."""
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
    return " ".join(text.split())[:ERROR_MAX]


class Jobs:
    """Runs the daemon's jobs under the guard; see the module docstring."""

    def __init__(self, database: Callable[[], sqlite_utils.Database], *,
                 storage: Watch | None = None) -> None:
        self._database = database  # the daemon's connection, opened after this is made
        self._storage = storage
        self.states: dict[str, JobState] = {}

    def run(self, name: str, job: Callable[[], T], *, now: float) -> T | None:
        """Run *job* unless it is paused; None when it failed (or was paused)."""
        state = self.states.setdefault(name, JobState())
        if now < state.paused_until:
            return None
        try:
            result = job()
        except Exception as exc:  # the guard: logged, recorded, and the loop goes on
            if self._storage is not None and self._storage.met(exc, f"job {name}"):
                return None
            log.exception("job %s failed", name)
            self._failed(name, state, exc, now)
            return None
        if state.failures or state.recorded:
            self._recovered(name, state, now)
        return result

    def paused(self, name: str, now: float) -> bool:
        state = self.states.get(name)
        return state is not None and now < state.paused_until

    def _failed(self, name: str, state: JobState, exc: Exception, now: float) -> None:
        state.failures += 1
        if state.failures >= PAUSE_AFTER:
            pause = min(PAUSE_MAX, PAUSE_FIRST * 2 ** (state.failures - PAUSE_AFTER))
            state.paused_until = now + pause
            log.error("job %s failed %d times in a row: paused for %.0f s", name,
                      state.failures, pause)
        try:
            with write(self._database()) as conn:
                conn.execute(
                    "INSERT INTO daemon_jobs (name, failures, last_error, last_error_at, "
                    "paused_until) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                    "failures = excluded.failures, last_error = excluded.last_error, "
                    "last_error_at = excluded.last_error_at, "
                    "paused_until = excluded.paused_until",
                    [name, state.failures, describe(exc), now, state.paused_until or None])
            state.recorded = True
        except sqlite3.Error:
            # The database itself may be what fails (a full or read-only disk): the log has
            # the error, and the next failure or recovery tries to record it again.
            log.exception("job %s: its failure could not be recorded", name)

    def _recovered(self, name: str, state: JobState, now: float) -> None:
        state.failures, state.paused_until = 0, 0.0
        try:
            with write(self._database()) as conn:
                conn.execute("UPDATE daemon_jobs SET failures = 0, paused_until = NULL, "
                             "recovered_at = ? WHERE name = ?", [now, name])
            state.recorded = False
            log.info("job %s works again", name)
        except sqlite3.Error:
            log.exception("job %s: its recovery could not be recorded", name)


def problems(conn: sqlite3.Connection) -> list[JobProblem]:
    """The daemon's jobs failing now (failed last time they ran), for staff."""
    return [JobProblem(r["name"], r["failures"], r["last_error"] or "", r["last_error_at"],
                       r["paused_until"])
            for r in conn.execute("SELECT * FROM daemon_jobs WHERE failures > 0 ORDER BY name")]

