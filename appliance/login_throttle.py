"""Slowing down password guessing on the clinic LAN without locking anyone out.

A lock per account lets anyone on the LAN lock every nurse out with a few wrong guesses. So
the throttle is kept per *client address*, as waits that grow, never as a lock:

- each address has `free` failed attempts in the window; after that it waits 30 s, then
  60 s, 120 s… (doubling with each further failure) up to `longest_wait`;
- when the whole appliance sees more than `global_failures` failures in the window (a
  guessing attack from many addresses), every address that has failed at all waits the same
  way, so the total guess rate stays small — an address that has not failed (the nurse's
  own tablet) still logs in at once;
- a successful login from an address clears its count.

The emergency code (appliance.emergency) is not throttled: it is long enough not to be
guessed, and it is what a nurse uses when her device is made to wait.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from . import audit
from .db import write

FIRST_WAIT = 30.0
FAILURES = ("bad_credentials", "bad_code", "inactive", "bad_emergency")
KEEP_SECONDS = 30 * 24 * 3600   # rows older than this are removed (the audit log keeps all)


@dataclass(frozen=True)
class Policy:
    free: int = 5                   # failures per address before it waits
    window: float = 15 * 60         # failures older than this are forgotten
    longest_wait: float = 5 * 60
    global_failures: int = 50       # across all addresses in the window


@dataclass(frozen=True)
class AddressState:
    remote_addr: str
    failures: int
    last_at: float
    wait: float
    usernames: tuple[str, ...]


def _marks() -> str:
    return ",".join("?" * len(FAILURES))


def _since(conn: sqlite3.Connection, policy: Policy, address: str, now: float) -> float:
    """Failures count from the window's start or the address's last success, the later."""
    row = conn.execute("SELECT max(at) FROM login_attempts WHERE remote_addr = ? AND "
                       "outcome IN ('ok', 'emergency', 'cleared') AND at > ?",
                       [address, now - policy.window]).fetchone()
    return max(now - policy.window, row[0] or 0)


def _failures(conn: sqlite3.Connection, policy: Policy, address: str, now: float
              ) -> tuple[int, float]:
    row = conn.execute(f"SELECT count(*), max(at) FROM login_attempts WHERE remote_addr = ? "
                       f"AND at > ? AND outcome IN ({_marks()})",
                       [address, _since(conn, policy, address, now), *FAILURES]).fetchone()
    return row[0], row[1] or 0.0


def global_failures(conn: sqlite3.Connection, policy: Policy, now: float) -> int:
    return conn.execute(f"SELECT count(*) FROM login_attempts WHERE at > ? AND outcome IN "
                        f"({_marks()})", [now - policy.window, *FAILURES]).fetchone()[0]


def _wait(policy: Policy, failures: int, last_at: float, free: int, now: float) -> float:
    if failures < free:
        return 0.0
    wait = min(policy.longest_wait, FIRST_WAIT * 2 ** min(failures - free, 20))
    return max(0.0, last_at + wait - now)


def wait_for(conn: sqlite3.Connection, policy: Policy, address: str, now: float) -> float:
    """Seconds this address must wait before its next attempt (0: it may try now)."""
    failures, last_at = _failures(conn, policy, address, now)
    if failures == 0:
        return 0.0
    under_attack = global_failures(conn, policy, now) >= policy.global_failures
    return _wait(policy, failures, last_at, 0 if under_attack else policy.free, now)


def record(conn: sqlite3.Connection, address: str, username: str | None, outcome: str,
           now: float) -> int:
    """Note one attempt (inside the caller's write transaction); old rows are dropped."""
    attempt = conn.execute("INSERT INTO login_attempts (at, remote_addr, username, outcome) "
                           "VALUES (?, ?, ?, ?)",
                           [now, address, (username or "")[:64], outcome]).lastrowid
    conn.execute("DELETE FROM login_attempts WHERE at < ?", [now - KEEP_SECONDS])
    return attempt


def settle(conn: sqlite3.Connection, attempt: int, outcome: str) -> None:
    """The outcome of an attempt recorded (as a failure) before it was checked."""
    conn.execute("UPDATE login_attempts SET outcome = ? WHERE id = ?", [outcome, attempt])


def clear(db: sqlite_utils.Database, address: str, *, now: float, actor: str,
          remote_addr: str | None = None) -> None:
    """An admin lets a waiting address try again at once (a nurse who mistyped)."""
    with write(db) as conn:
        record(conn, address, None, "cleared", now)
        audit.record(conn, actor, "login_throttle_clear", remote_addr, address=address)


def recent(conn: sqlite3.Connection, policy: Policy, now: float, *, hours: float = 24
           ) -> list[AddressState]:
    """Addresses with failed attempts in the last *hours*, the most failures first: what
    admins see on the dashboard."""
    rows = conn.execute(
        f"SELECT remote_addr, count(*) AS n, max(at) AS last_at, "
        f"group_concat(DISTINCT username) AS names FROM login_attempts "
        f"WHERE at > ? AND outcome IN ({_marks()}, 'throttled') GROUP BY remote_addr "
        f"ORDER BY n DESC, last_at DESC LIMIT 20", [now - hours * 3600, *FAILURES]).fetchall()
    return [AddressState(r["remote_addr"], r["n"], r["last_at"],
                         wait_for(conn, policy, r["remote_addr"], now),
                         tuple(sorted({n for n in (r["names"] or "").split(",") if n})))
            for r in rows]
