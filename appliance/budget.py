"""Each SIM's pace and daily budget, counted from the parts table itself.

Japanese carriers cap an ordinary line at about 200 SMS a day and count every part of a
long message, so the budget is in parts. "Today" is a rolling 24 hours: it never lets a
SIM exceed its limit in any calendar day, whatever day boundary the carrier uses, and it
needs no clock arithmetic that a wrong timezone could break.

Nothing here is stored: the count of parts a modem submitted (or may have: sending,
uncertain) is the truth, so a restart or a crash can never reset a budget.
"""
from __future__ import annotations

import sqlite3

from .config import Config, ModemConfig

DAY = 24 * 3600

# Parts that may have reached the network count against the budget.
_SPENT = "('sending', 'submitted', 'delivered', 'failed', 'uncertain')"


def sent_today(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> int:
    return conn.execute(
        f"SELECT count(*) FROM parts WHERE modem = ? AND sending_at > ? "
        f"AND state IN {_SPENT}", [modem.name, now - DAY]).fetchone()[0]


def remaining(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> int:
    """Parts this SIM may still send in the current 24 hours."""
    return max(0, modem.daily_limit - sent_today(conn, modem, now))


def next_send_allowed_at(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> float:
    """When this SIM may hand the next part to the network, at its pace (parts/minute)."""
    last = conn.execute("SELECT max(sending_at) FROM parts WHERE modem = ?",
                        [modem.name]).fetchone()[0]
    if last is None:
        return now
    # min(): a clock set back after the last send must not stop the SIM for hours.
    return min(last, now) + 60.0 / modem.pace


def capacity(conn: sqlite3.Connection, config: Config, now: float) -> dict[str, int]:
    """Remaining parts per modem, for the confirm page and the planner."""
    return {m.name: remaining(conn, m, now) for m in config.modems}


def seconds_for(parts: int, config: Config, ready_modems: int | None = None) -> float:
    """How long *parts* take at the configured pace, spread over the modems."""
    modems = config.modems[:ready_modems] if ready_modems else config.modems
    per_minute = sum(m.pace for m in modems)
    return 60.0 * parts / per_minute if per_minute else float("inf")
