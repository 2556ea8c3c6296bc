"""Each SIM's pace and daily budget, counted from the parts table itself.

Japanese carriers cap an ordinary line at about 200 SMS a day and count every part of a
long message, so the budget is in parts. "Today" is a rolling 24 hours: it never lets a
SIM exceed its limit in any calendar day, whatever day boundary the carrier uses, and it
needs no clock arithmetic that a wrong timezone could break.

Nothing here is stored: the count of parts a modem submitted (or may have: sending,
uncertain) is the truth, so a restart or a crash can never reset a budget.
"""
from __future__ import annotations

import bisect
import sqlite3
from dataclasses import dataclass

from .config import Config, ModemConfig

DAY = 24 * 3600

# Parts that may have reached the network count against the budget.
_SPENT = "('sending', 'submitted', 'delivered', 'failed', 'uncertain')"


def sent_today(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> int:
    return conn.execute(
        f"SELECT count(*) FROM parts WHERE modem = ? AND sending_at > ? "
        f"AND state IN {_SPENT}", [modem.name, now - DAY]).fetchone()[0]


# Parts of the messages a modem has taken (state 'sending') that it has not handed over
# yet: they are about to spend its room, so the room is counted without them. Without this
# a two-part message half-way through freed a part of room for a moment, and a broadcast
# page's 上限待ち count went 99, 100, 99.
_IN_FLIGHT = f"""
SELECT coalesce(sum(r.parts_count - (SELECT count(*) FROM parts AS p WHERE
                                     p.recipient_id = r.id AND p.state IN {_SPENT}
                                     AND p.sending_at IS NOT NULL)), 0)
FROM recipients AS r WHERE r.state = 'sending' AND r.modem = ?"""


def _in_flight(conn: sqlite3.Connection, modem: ModemConfig) -> int:
    return max(0, conn.execute(_IN_FLIGHT, [modem.name]).fetchone()[0])


def remaining(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> int:
    """Parts this SIM may still send in the current 24 hours, after the rest of the message
    it is sending."""
    # Read before every message a modem takes: counting stops at the limit, so the work is
    # bounded by the SIM's own limit, not by all it sent today (a SIM allowed 100,000 a day
    # took 7 ms a message by the end of a 10,000-person broadcast).
    spent = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM parts WHERE modem = ? AND sending_at > ? "
        f"AND state IN {_SPENT} LIMIT ?)",
        [modem.name, now - DAY, modem.daily_limit]).fetchone()[0]
    return max(0, modem.daily_limit - spent - _in_flight(conn, modem))


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


def _spent_times(conn: sqlite3.Connection, modem: ModemConfig, now: float) -> list[float]:
    """When each part in this SIM's last 24 hours was handed over, in order; the parts
    still to go of the message it is sending count as handed over now."""
    spent = [r[0] for r in conn.execute(
        f"SELECT sending_at FROM parts WHERE modem = ? AND sending_at > ? "
        f"AND state IN {_SPENT} ORDER BY sending_at", [modem.name, now - DAY])]
    flying = _in_flight(conn, modem)
    # Sorted again: a part handed over by the daemon may carry a moment after this *now*.
    return sorted(spent + [now] * flying) if flying else spent


def forecast(conn: sqlite3.Connection, config: Config, now: float,
             waiting: list[tuple[int, int, float]]) -> dict[int, float]:
    """When each waiting message can go as far as the SIMs' daily limits allow (not their
    pace): *waiting* is (recipient id, parts, due time) in send order; inf when no SIM's
    limit could ever take it.

    Each message is given, in order, to the SIM whose rolling 24 hours free room for it
    first, and spends that room: what staff see as 上限待ち "until 09:15", and what a plan's
    time estimate adds. A forecast, not a promise: a message of the same priority that
    fits further down the order may go first (outbox.claim), which this does not model.

    It runs over the whole queue on every broadcast page load and live update, so the
    loop is _room_at() written out over plain lists (10,000 queued: a few ms, not tens).
    """
    sims = [(m.daily_limit, _spent_times(conn, m, now)) for m in config.modems]
    lasts = [now] * len(sims)
    out: dict[int, float] = {}
    never = float("inf")
    for recipient_id, parts, due in waiting:
        best, best_sim = never, -1
        for i, (limit, spent) in enumerate(sims):
            if parts > limit:
                continue
            start = due if due > lasts[i] else lasts[i]
            # As _room_at(): the parts sent within (start - DAY, start] and these must fit.
            first = bisect.bisect_right(spent, start - DAY)
            over = len(spent) - first + parts - limit
            at = start if over <= 0 else spent[first + over - 1] + DAY
            if at < best:
                best, best_sim = at, i
        out[recipient_id] = best
        if best_sim >= 0:
            # Allocations come in time order per SIM (best >= its last), so the list stays
            # sorted by appending.
            sims[best_sim][1].extend([best] * parts)
            lasts[best_sim] = best
    return out


def _room_at(sim: dict, parts: int, start: float) -> float:
    """The first moment from *start* at which *parts* more fit in the SIM's 24 hours."""
    if parts > sim["limit"]:
        return float("inf")
    spent = sim["spent"]  # sorted; every entry is at or before start
    first = bisect.bisect_right(spent, start - DAY)   # sent within (start - DAY, start]
    over = len(spent) - first + parts - sim["limit"]
    if over <= 0:
        return start
    return spent[first + over - 1] + DAY


# Queued messages in the order the modems take them (outbox.claim): emergency first, then
# as they became due.
_WAITING = """
SELECT r.id, r.parts_count, r.next_attempt_at FROM recipients AS r
JOIN broadcasts AS b ON b.id = r.broadcast_id
WHERE r.state = 'queued' AND b.state NOT IN ('cancelled', 'scheduled')
ORDER BY r.priority_rank, r.next_attempt_at, r.id"""


def _waiting(conn: sqlite3.Connection) -> list[tuple[int, int, float]]:
    """(recipient id, parts, due time) of every queued message, in send order; as plain
    tuples (a sqlite3.Row each costs more than the forecast of it)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(_WAITING).fetchall()


def held_back(conn: sqlite3.Connection, config: Config, now: float, *,
              broadcast_id: int | None = None) -> dict[int, float]:
    """Queued messages that the daily limits hold back (上限待ち): recipient id → when the
    budget lets it go (inf: no SIM's limit ever can).

    *broadcast_id*: only that broadcast's, as its page and `broadcast show` need. The
    forecast then stops after its last queued message (the ones behind it cannot change its
    times) and is not made at all when it has none queued: with a week of reminders
    queued, a finished broadcast's page no longer forecasts 10,000 messages.
    """
    if broadcast_id is not None:
        return broadcast_forecast(conn, config, now, broadcast_id)[0]
    return _held(conn, config, now, _waiting(conn))


def broadcast_forecast(conn: sqlite3.Connection, config: Config, now: float,
                       broadcast_id: int) -> tuple[dict[int, float], float | None]:
    """For one broadcast's page: (its queued messages the daily limits hold back, as
    held_back() gives them; the seconds until the last of its messages that can go now has
    gone, or None when none can).

    The queue sends what is ahead of the broadcast first — an emergency, an earlier
    broadcast — so those messages count too, at the SIMs' pace; the ones the limits hold
    back (its own or ahead of it) do not, as they wait for the budget, not for the modems.
    """
    mine = {r[0] for r in conn.execute("SELECT id FROM recipients WHERE broadcast_id = ? "
                                       "AND state = 'queued'", [broadcast_id])}
    if not mine:
        return {}, None
    waiting = _waiting(conn)
    last = max((i for i, w in enumerate(waiting) if w[0] in mine), default=-1)
    waiting = waiting[:last + 1]
    held = _held(conn, config, now, waiting)
    going = [(rid, parts) for rid, parts, _due in waiting if rid not in held]
    seconds = seconds_for(sum(parts for _rid, parts in going), config) \
        if any(rid in mine for rid, _parts in going) else None
    return {rid: at for rid, at in held.items() if rid in mine}, seconds


def _held(conn: sqlite3.Connection, config: Config, now: float,
          waiting: list[tuple[int, int, float]]) -> dict[int, float]:
    """Which of *waiting* (in send order) the daily limits hold back, and until when."""
    due = {rid: at for rid, _parts, at in waiting}
    return {rid: at for rid, at in forecast(conn, config, now, waiting).items()
            if at > max(now, due[rid]) + 1.0}


def room_at(conn: sqlite3.Connection, modem: ModemConfig, now: float, parts: int) -> float:
    """When this SIM's daily limit next has room for *parts* (now when it has)."""
    return _room_at({"limit": modem.daily_limit, "spent": _spent_times(conn, modem, now)},
                    parts, now)


@dataclass(frozen=True)
class PlannedTimes:
    """When the daily limits let a planned broadcast's messages go, behind the queue."""
    times: list[float]      # each planned message's, in send order (now: at once)
    ahead: int              # parts already waiting that go before them now

    def last(self, now: float) -> float:
        """When the last can go: now when all fit at once, inf when one never fits."""
        return max(self.times, default=now)

    def going_now(self, now: float) -> int:
        """How many of the planned messages go now, before the first that must wait."""
        return next((i for i, at in enumerate(self.times) if at > now + 1.0), len(self.times))


def planned_times(conn: sqlite3.Connection, config: Config, now: float, parts: list[int], *,
                  emergency: bool) -> PlannedTimes:
    """When the daily limits let each of a planned broadcast's messages go (*parts* each,
    in order), behind the messages already waiting — an emergency goes ahead of the routine
    ones — which spend the SIMs' room first."""
    waiting = _waiting(conn)
    planned = [(-i - 1, n, now) for i, n in enumerate(parts)]
    cut = len(waiting)
    if emergency:
        routine = {r[0] for r in conn.execute(
            "SELECT id FROM recipients WHERE state = 'queued' AND priority_rank > 0")}
        cut = next((i for i, w in enumerate(waiting) if w[0] in routine), len(waiting))
    before = waiting[:cut]   # what waits behind the planned ones cannot change their times
    times = forecast(conn, config, now, before + planned)
    return PlannedTimes(times=[times[rid] for rid, _n, _due in planned],
                        ahead=sum(n for rid, n, _due in before if times[rid] <= now + 1.0))
