"""Crash recovery: what the daemon does at start with work a previous run left half-done.

After kill -9 or a power cut, the database (WAL, synchronous=FULL) holds every committed
state; the only open question is a part caught in 'sending': its state was committed
before AT+CMGS, and whether the modem sent it is unknown. docs/crash-safety.md states the
policy; in short, for each recipient message left in 'sending':

- nothing had reached the modem (crash between the claim and the first AT+CMGS):
  queued again, the attempt not counted — no risk of a duplicate;
- every part had been submitted: it is submitted (the last commit was lost);
- some parts were submitted and none was in flight (crash between two parts): the phone
  has an incomplete message, so the rest is queued again, visibly — through the same
  modem with the same concatenation reference, so that the phone joins it to the parts
  it has (outbox.stop_half_way), or whole when that cannot be;
- a part was in flight: that part becomes 'uncertain' and config.daemon.resend_uncertain
  decides — "emergency" (default) resends emergency messages and leaves routine ones
  'uncertain' for staff; "always" resends all; "never" resends none. A long message is
  resent from the part in flight, with the same reference (a phone keeps one copy of a
  part it already has).

Every resend and every uncertain recipient gets a last_error that says so and an audit
row: nobody gets a silent duplicate.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import sqlite_utils

from . import audit
from .db import write
from .outbox import ACTOR, settle_uncertain, should_resend, stop_half_way


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
        rows = conn.execute("SELECT id, broadcast_id, parts_count, priority_rank, modem FROM "
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
                                  resend=should_resend(policy, row["priority_rank"]),
                                  modem=row["modem"])
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
        first_unsent = min(set(range(1, total + 1)) - set(sent))
        if stop_half_way(conn, rid, first_unsent, row["modem"], now):
            note = (f"daemon stopped after part {len(sent)}/{total} — the rest is sent with "
                    "the same reference, and the phone joins them")
            reason = "resumed"
        else:
            note = (f"daemon stopped after part {len(sent)}/{total} — the whole message is "
                    "sent again")
            reason = "whole_again"
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "last_error = ?, reason = ? WHERE id = ?", [now, note, reason, rid])
        audit.record(conn, ACTOR, "recipient_resent", recipient_id=rid,
                     broadcast_id=row["broadcast_id"], reason=note)
        result.resent.append(rid)
