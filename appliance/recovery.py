"""Crash recovery: what the daemon does at start with work a previous run left half-done.

After kill -9 or a power cut, the database (WAL, synchronous=FULL) holds every committed
state; the only open question is a part caught in 'sending': its state was committed
before AT+CMGS, and whether the modem sent it is unknown. docs/crash-safety.md states the
policy; in short, for each recipient message left in 'sending':

- nothing had reached the modem (crash between the claim and the first AT+CMGS):
  queued again, the attempt not counted — no risk of a duplicate;
- every part had been submitted: it is submitted (the last commit was lost);
- some parts were submitted and none was in flight (crash between two parts): the phone
  has an incomplete message, so the whole message is queued again, visibly;
- a part was in flight: that part becomes 'uncertain' and config.daemon.resend_uncertain
  decides — "emergency" (default) resends emergency messages and leaves routine ones
  'uncertain' for staff; "always" resends all; "never" resends none.

Every resend and every uncertain recipient gets a last_error that says so and an audit
row: nobody gets a silent duplicate.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import sqlite_utils

from . import audit
from .db import write
from .outbox import ACTOR, settle_uncertain, should_resend


@dataclass
class Recovery:
    """What recovery did, by recipient id (for the log and the tests)."""
    requeued: list[int] = field(default_factory=list)       # nothing had gone out
    submitted: list[int] = field(default_factory=list)      # everything had gone out
    resent: list[int] = field(default_factory=list)         # partial or uncertain, resent
    uncertain: list[int] = field(default_factory=list)      # left for staff
    broadcasts: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return len(self.requeued) + len(self.submitted) + len(self.resent) + len(self.uncertain)


def recover(db: sqlite_utils.Database, *, policy: str, now: float) -> Recovery:
    """Settle every recipient message a previous run left in 'sending' (one transaction)."""
    result = Recovery()
    with write(db) as conn:
        rows = conn.execute("SELECT id, broadcast_id, parts_count, priority_rank FROM "
                            "recipients WHERE state = 'sending' ORDER BY id").fetchall()
        for row in rows:
            _recover_one(conn, row, policy, now, result)
            result.broadcasts.add(row["broadcast_id"])
        # A part cannot be in flight for a message that is not: settle strays too.
        conn.execute("UPDATE parts SET state = 'uncertain', error = coalesce(error, "
                     "'daemon stopped while sending') WHERE state = 'sending'")
    return result


def _recover_one(conn: sqlite3.Connection, row: sqlite3.Row, policy: str, now: float,
                 result: Recovery) -> None:
    rid, total = row["id"], row["parts_count"]
    parts = conn.execute("SELECT seq, state FROM parts WHERE recipient_id = ? ORDER BY seq",
                         [rid]).fetchall()
    in_flight = [p["seq"] for p in parts if p["state"] == "sending"]
    sent = [p["seq"] for p in parts if p["state"] in ("submitted", "delivered")]
    if in_flight:
        seq = in_flight[0]
        conn.execute("UPDATE parts SET state = 'uncertain', error = ? WHERE recipient_id = ? "
                     "AND state = 'sending'", ["daemon stopped during AT+CMGS", rid])
        state = settle_uncertain(conn, rid, row["broadcast_id"], seq, total,
                                  "daemon stopped during AT+CMGS", now,
                                  resend=should_resend(policy, row["priority_rank"]))
        (result.resent if state == "queued" else result.uncertain).append(rid)
    elif not sent:
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "attempts = max(attempts - 1, 0) WHERE id = ?", [now, rid])
        result.requeued.append(rid)
    elif len(sent) >= total:
        conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = coalesce("
                     "(SELECT max(submitted_at) FROM parts WHERE recipient_id = ?), ?) "
                     "WHERE id = ?", [rid, now, rid])
        result.submitted.append(rid)
    else:
        note = (f"daemon stopped after part {len(sent)}/{total} — the whole message is "
                "sent again")
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "last_error = ? WHERE id = ?", [now, note, rid])
        audit.record(conn, ACTOR, "recipient_resent", recipient_id=rid,
                     broadcast_id=row["broadcast_id"], reason=note)
        result.resent.append(rid)
