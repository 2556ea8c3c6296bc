"""Ring the patients who did not read: one short voice call from the clinic's number.

After a broadcast with "ring if no answer" (broadcasts.ring_if_no_answer: an emergency's by
default), a recipient whose SMS has had no delivery report and no reply for [ring]
after_minutes gets one call: ATD<number>;, let it ring up to [ring] ring_seconds, hang up
(ATH). The phone shows a missed call from the clinic, which elderly patients notice and
return. What came of it — rang (nobody answered), busy, no_carrier (switched off, out of
reach), answered — is kept per recipient (ring_calls) and shown on the broadcast page and
the call list.

Never: a contact who said no (contacts.no_ring), in the quiet hours ([ring] quiet_hours),
for a broadcast older than [ring] within_hours, twice to a number for one broadcast (its
resends included), and never while the modem has SMS to send — the call is a step its
worker takes between two sends (Worker.request_task), given up the moment an SMS becomes
due (unless [ring] modem sets a modem aside for calls, which sends no SMS). One call at a
time: a ring is a favour, the SMS is the message.

A call is written 'ringing' before the ATD and 'done' with its outcome after it; a daemon
stopped mid-call leaves it 'unknown' at the next start (`settle_interrupted`), never rung
again.
"""
from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from modem.errors import ModemError

from . import budget, outbox
from .clock import in_daily_window
from .config import Config
from .db import write

log = logging.getLogger(__name__)

OUTCOMES = ("rang", "busy", "no_carrier", "answered", "unknown")
POLL = 0.5              # seconds between two looks at the call (AT+CLCC)
TASK_GRACE = 60.0       # a call's task not done this long after its ring time: given up
ALERTING, ACTIVE = 3, 0  # +CLCC <stat> (TS 27.007 7.18)


# -- who is due -----------------------------------------------------------------------------

def quiet_now(config: Config, now: float) -> bool:
    quiet = config.ring.quiet
    if quiet is None:
        return False
    start, end = (dt.time.fromisoformat(f"{t:0>5}") for t in quiet)
    return in_daily_window(now, config.zone, start, end)


def due(conn: sqlite3.Connection, config: Config, now: float, *, limit: int = 1
        ) -> list[sqlite3.Row]:
    """Recipients to ring now, longest waiting first: their broadcast asks for it, their
    SMS went at least [ring] after_minutes ago (within [ring] within_hours) and has had no
    delivery report (or, with also_delivered, only that) and nobody with that number has
    answered, in this broadcast or a resend of it; not rung for it yet, not opted out."""
    if quiet_now(config, now):
        return []
    states = ("'submitted', 'uncertain', 'delivered'" if config.ring.also_delivered
              else "'submitted', 'uncertain'")
    return conn.execute(
        f"SELECT r.id, r.broadcast_id, r.phone, r.name FROM recipients r "
        f"JOIN broadcasts b ON b.id = r.broadcast_id "
        f"WHERE b.ring_if_no_answer = 1 AND b.drill = 0 AND b.state != 'cancelled' "
        f"AND r.state IN ({states}) AND r.acknowledged_at IS NULL "
        f"AND coalesce(r.submitted_at, r.claimed_at) BETWEEN ? AND ? "
        f"AND NOT EXISTS (SELECT 1 FROM ring_calls c WHERE c.broadcast_id = b.id "
        f"                AND c.phone = r.phone) "
        f"AND NOT EXISTS (SELECT 1 FROM contacts k WHERE k.id = r.contact_id AND k.no_ring) "
        f"AND NOT EXISTS (SELECT 1 FROM recipients a JOIN broadcasts ab ON ab.id = "
        f"                a.broadcast_id WHERE a.phone = r.phone AND a.acknowledged_at IS "
        f"                NOT NULL AND (ab.id = b.id OR ab.parent_id = b.id)) "
        f"ORDER BY coalesce(r.submitted_at, r.claimed_at), r.id LIMIT ?",
        [now - config.ring.within_hours * 3600, now - config.ring.after_minutes * 60,
         limit]).fetchall()


def start(conn: sqlite3.Connection, recipient: sqlite3.Row, modem: str, now: float) -> int | None:
    """Write the call 'ringing' before the ATD (inside the caller's write transaction);
    None when the number was rung for this broadcast already."""
    try:
        return conn.execute(
            "INSERT INTO ring_calls (recipient_id, broadcast_id, phone, modem, state, "
            "started_at) VALUES (?, ?, ?, ?, 'ringing', ?)",
            [recipient["id"], recipient["broadcast_id"], recipient["phone"], modem, now]
        ).lastrowid
    except sqlite3.IntegrityError:
        return None


def finish(conn: sqlite3.Connection, call_id: int, outcome: str | None, *, now: float,
           detail: str | None = None) -> None:
    """What came of the call; *outcome* None: it never rang (an SMS became due first, or
    the modem was away), so the number may be rung later."""
    if outcome is None:
        conn.execute("DELETE FROM ring_calls WHERE id = ? AND state = 'ringing'", [call_id])
        return
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r}")
    conn.execute("UPDATE ring_calls SET state = 'done', outcome = ?, ended_at = ?, detail = ? "
                 "WHERE id = ?", [outcome, now, detail, call_id])


def settle_interrupted(conn: sqlite3.Connection, now: float) -> int:
    """At start: calls a stopped daemon left 'ringing' may have rung: 'unknown', kept."""
    return conn.execute("UPDATE ring_calls SET state = 'done', outcome = 'unknown', "
                        "ended_at = ?, detail = 'the daemon stopped during the call' "
                        "WHERE state = 'ringing'", [now]).rowcount


# -- the call itself (on the modem's worker, between two sends) -------------------------------

def ring(device: Any, number: str, *, seconds: float,
         interrupt: Callable[[], bool] = lambda: False,
         clock: Callable[[], float] = time.monotonic, poll: float = POLL) -> str | None:
    """Call *number*, let it ring up to *seconds*, hang up; the outcome, or None when it
    was given up before it rang (*interrupt* said so: an SMS is due)."""
    if interrupt():
        return None
    ended = device.dial(number)
    if ended:
        return _ended(ended, alerted=False)
    began, alerted = clock(), False
    try:
        while True:
            results = device.call_results(poll)
            calls = [c for c in device.calls() if not c.incoming]
            if results or not calls:
                return _ended(results[0] if results else "NO CARRIER", alerted)
            if calls[0].stat == ACTIVE:
                return "answered"
            alerted = alerted or calls[0].stat == ALERTING
            if clock() - began >= seconds:
                return "rang" if alerted else "no_carrier"
            if interrupt():
                return "rang" if alerted else None
    finally:
        try:
            device.hang_up()
        except ModemError as exc:
            # The modem went away mid-call: its worker finds out and re-opens it.
            log.info("hanging up %s: %s", number[-4:], exc)


def _ended(result: str, alerted: bool) -> str:
    if result == "BUSY":
        return "busy"
    if result == "NO ANSWER" or alerted:
        return "rang"   # it rang; the network or the phone gave up (or declined)
    return "no_carrier"


# -- the daemon's job ---------------------------------------------------------------------------

@dataclass
class _InFlight:
    call_id: int
    future: Future
    deadline: float
    worker: str


class Ringer:
    """Hands due calls, one at a time, to a modem's worker, and records what came of them
    (the daemon's `ringing` job, under the job guard)."""

    def __init__(self, config: Config, database: Callable[[], Any],
                 workers: Callable[[], list], clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._database = database
        self._workers = workers
        self._clock = clock
        self.in_flight: _InFlight | None = None

    def run(self, now: float) -> int | None:
        """Record a finished call, or start the next; the call id started, if any."""
        db = self._database()
        if self.in_flight is not None:
            if not self._finished(db, now):
                return None
        with write(db) as conn:
            recipients = due(conn, self.config, now)
            worker = self._free_worker(conn, now) if recipients else None
            call_id = start(conn, recipients[0], worker.name, now) if worker else None
        if call_id is None:
            return None
        number = recipients[0]["phone"]
        future = worker.request_task(lambda device: ring(
            device, number, seconds=self.config.ring.ring_seconds,
            interrupt=self._interrupt(worker)))
        self.in_flight = _InFlight(call_id, future,
                                   now + self.config.ring.ring_seconds + TASK_GRACE,
                                   worker.name)
        log.info("%s: ringing %s (recipient %d)", worker.name, number[-4:], recipients[0]["id"])
        return call_id

    def _finished(self, db, now: float) -> bool:
        call = self.in_flight
        if not call.future.done() and now < call.deadline:
            return False
        outcome, detail = None, None
        if not call.future.done():
            outcome, detail = "unknown", "the modem's worker did not run the call in time"
        elif call.future.exception() is not None:
            # Not open (nothing rang), or it went away mid-call (it may have rung).
            from .dispatcher import ModemUnavailable
            error = call.future.exception()
            if not isinstance(error, ModemUnavailable):
                outcome, detail = "unknown", str(error)[:200]
        else:
            outcome = call.future.result()
        with write(db) as conn:
            finish(conn, call.call_id, outcome, now=now, detail=detail)
        log.info("%s: call %d: %s", call.worker, call.call_id, outcome or "not rung, later")
        self.in_flight = None
        return True

    def _free_worker(self, conn: sqlite3.Connection, now: float):
        """The modem set aside for calls, else one with no SMS it could send now."""
        for worker in self._workers():
            if not worker.link.sendable:
                continue
            if self.config.ring.modem:
                if worker.name == self.config.ring.modem:
                    return worker
                continue
            if not outbox.claimable(conn, worker.name, now,
                                    max_parts=budget.remaining(conn, worker.modem, now),
                                    daily_limit=worker.modem.daily_limit):
                return worker
        return None

    def _interrupt(self, worker) -> Callable[[], bool]:
        """Asked on the worker's thread during the call: stop for an SMS now due."""
        set_aside = worker.name == self.config.ring.modem

        def interrupt() -> bool:
            if worker.stop.is_set():
                return True
            if set_aside:
                return False
            now = self._clock()
            conn = worker.db.conn
            return outbox.claimable(conn, worker.name, now,
                                    max_parts=budget.remaining(conn, worker.modem, now),
                                    daily_limit=worker.modem.daily_limit)
        return interrupt


# -- what the pages show ----------------------------------------------------------------------

def for_recipients(conn: sqlite3.Connection, recipient_ids: list[int]) -> dict[int, dict]:
    """The call made to each recipient (those never rung are absent)."""
    if not recipient_ids:
        return {}
    marks = ",".join("?" * len(recipient_ids))
    return {r["recipient_id"]: dict(r) for r in conn.execute(
        f"SELECT * FROM ring_calls WHERE recipient_id IN ({marks})", list(recipient_ids))}
