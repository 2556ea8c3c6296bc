"""Phone calls from the call list: what came of each call, with a note, and undo.

A call is a row of its own (call_outcomes), never an overwrite, so a wrong tap is undone
without losing what happened, and several staff phoning from one list see who called whom.
'reached' counts the person as acknowledged (broadcasts.summary, resends skip them), like a
reply; undoing it takes that back unless the person had also replied by SMS.
"""
from __future__ import annotations

import re
import sqlite3

from . import audit
from .wording import CALL_OUTCOMES

OUTCOMES = tuple(CALL_OUTCOMES)
NOTE_MAX = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CallError(ValueError):
    """A call cannot be recorded or undone as asked; `field` names the form field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def record(conn: sqlite3.Connection, recipient_id: int, outcome: str, *, note: str,
           actor: str, now: float) -> int:
    """Record a call to a recipient (inside a write transaction); returns its id."""
    if outcome not in OUTCOMES:
        raise CallError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}",
                        field="outcome")
    note = _CONTROL.sub(" ", note or "").strip()
    if len(note) > NOTE_MAX:
        raise CallError(f"the note is longer than {NOTE_MAX} characters", field="note")
    row = conn.execute("SELECT broadcast_id FROM recipients WHERE id = ?",
                       [recipient_id]).fetchone()
    if row is None:
        raise CallError(f"no recipient with id {recipient_id}", field="recipient")
    call_id = conn.execute(
        "INSERT INTO call_outcomes (recipient_id, broadcast_id, outcome, note, called_by, "
        "called_at) VALUES (?,?,?,?,?,?)",
        [recipient_id, row["broadcast_id"], outcome, note, actor, now]).lastrowid
    if outcome == "reached":
        conn.execute("UPDATE recipients SET acknowledged_at = coalesce(acknowledged_at, ?) "
                     "WHERE id = ?", [now, recipient_id])
    audit.record(conn, actor, "call_outcome", recipient_id=recipient_id,
                 broadcast_id=row["broadcast_id"], outcome=outcome, note=note or None)
    return call_id


def undo(conn: sqlite3.Connection, call_id: int, *, actor: str, now: float) -> int:
    """Take back a recorded call (inside a write transaction); returns its broadcast id."""
    call = conn.execute("SELECT * FROM call_outcomes WHERE id = ? AND undone_at IS NULL",
                        [call_id]).fetchone()
    if call is None:
        raise CallError(f"no call {call_id} to undo (already undone?)", field="call")
    conn.execute("UPDATE call_outcomes SET undone_at = ?, undone_by = ? WHERE id = ?",
                 [now, actor, call_id])
    if call["outcome"] == "reached" and latest(conn, [call["recipient_id"]]).get(
            call["recipient_id"], {}).get("outcome") != "reached":
        # Acknowledged by this call alone (no SMS reply): no longer.
        conn.execute("UPDATE recipients SET acknowledged_at = NULL WHERE id = ? AND "
                     "reply_id IS NULL", [call["recipient_id"]])
    audit.record(conn, actor, "call_outcome_undone", recipient_id=call["recipient_id"],
                 broadcast_id=call["broadcast_id"], outcome=call["outcome"])
    return call["broadcast_id"]


def latest(conn: sqlite3.Connection, recipient_ids: list[int]) -> dict[int, dict]:
    """The latest call not undone, per recipient id (those never called are absent)."""
    if not recipient_ids:
        return {}
    marks = ",".join("?" * len(recipient_ids))
    out: dict[int, dict] = {}
    for row in conn.execute(f"SELECT * FROM call_outcomes WHERE recipient_id IN ({marks}) "
                            "AND undone_at IS NULL ORDER BY id", list(recipient_ids)):
        out[row["recipient_id"]] = dict(row)
    return out
