"""The durable send queue: claiming recipient messages and moving them and their parts
through their states (ARCHITECTURE.md, "The life of one message").

Only the daemon's modem workers call these. Every function is one short BEGIN IMMEDIATE
transaction, so the database always says what the modem may have done:

- `claim()` takes one whole recipient message for one modem (a conditional UPDATE whose
  row count is checked), emergency before routine, then in the order they became due (a
  message retried after an error goes behind those already waiting);
- a part is committed 'sending' *before* the AT+CMGS that may send it: by `part_sending()`,
  by `begin_claimed()` for the first part of a message claimed ahead, or, for the next
  part of the same message, by `part_in_flight()` while the modem is busy with the part
  before (which also writes that part's hand-over time); its TP-MR (`Accepted`) goes into
  the first commit after the modem's answer: the next part's `part_in_flight()`, the next
  message's `begin_claimed()`, or `record_answers()` when nothing follows at once;
- a failed send ends in `retry_or_fail()` (the modem refused the message), `release()`
  (the modem itself is at fault: the message goes back for any modem, the attempt is not
  held against it) or `uncertain()` (the modem may or may not have sent it).

A resend after a part may have gone out is never silent: the recipient's last_error says
so and an audit row records it (see docs/crash-safety.md).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from . import audit
from .db import write

ACTOR = "daemon"
RESEND_POLICIES = ("emergency", "always", "never")
# recipients.priority_rank, the claim order: an answer to a staff phone's command (a code
# to type back within minutes) before everything, then emergencies, then routine messages.
RANK_FIRST, RANK_EMERGENCY, RANK_ROUTINE = -1, 0, 1

# Due to be sent: queued, its retry time reached, its broadcast neither cancelled nor held.
_DUE = """
FROM recipients AS r JOIN broadcasts AS b ON b.id = r.broadcast_id
WHERE r.state = 'queued' AND r.next_attempt_at <= :now
  AND b.state NOT IN ('cancelled', 'scheduled')"""
# A long message stopped half-way (resume_from) is the modem's that sent its first parts
# while that modem can send and the resume window lasts (RESUME_WINDOW): the rest goes with
# the same concatenation reference, and the phone joins them. After that, or when that
# modem is down, any modem sends it whole (parts from two SIMs never join up).
_RESUMING_HERE = "(r.resume_modem = :modem AND r.resume_until > :now)"
_FOR_THIS_MODEM = f"""
  AND (r.resume_modem IS NULL OR {_RESUMING_HERE} OR r.resume_until <= :now
       OR r.resume_modem NOT IN (SELECT name FROM modem_status
                                 WHERE reason IS NULL OR reason = 'weak_signal'))"""
# The parts this modem would send of it: the rest of one it stopped, or all.
_PARTS_NEEDED = (f"CASE WHEN {_RESUMING_HERE} THEN r.parts_count - r.resume_from + 1 "
                 "ELSE r.parts_count END")
# A message that does not fit today's room leaves it to a later one that does, but only
# of its own priority: a routine one-part reminder taking each part of room as it frees
# would keep a two-part emergency waiting for as long as reminders are queued (a week of
# them, behind the daily limit). A message this SIM's limit can never take holds nothing.
_CLAIM_NEXT = f"""
SELECT r.id, r.broadcast_id, r.phone, r.text, r.parts_count, r.attempts, r.priority_rank,
       r.resume_from, r.concat_ref, {_RESUMING_HERE} AS resuming
{_DUE}{_FOR_THIS_MODEM}
  AND {_PARTS_NEEDED} <= :max_parts
  AND r.priority_rank <= (SELECT r.priority_rank {_DUE}{_FOR_THIS_MODEM}
                            AND {_PARTS_NEEDED} <= :daily_limit
                          ORDER BY r.priority_rank, r.next_attempt_at, r.id LIMIT 1)
ORDER BY r.priority_rank, r.next_attempt_at, r.id
LIMIT 1
"""
RESUME_WINDOW = 30 * 60.0   # seconds a stopped long message waits for its own modem
# A message claimed but not begun: no part of this attempt handed to a modem (or marked
# to be); the parts a resumed message had sent before do not count.
NOT_BEGUN = ("NOT EXISTS (SELECT 1 FROM parts WHERE parts.recipient_id = recipients.id "
             "AND parts.state != 'queued' AND parts.seq >= coalesce(recipients.resume_from, 1))")
# The state staff see: a message a modem has claimed ahead but not begun is still waiting,
# so one modem never shows two messages "sending" (and a cancel still stops it).
SHOWN_STATE = (f"CASE WHEN recipients.state = 'sending' AND {NOT_BEGUN} THEN 'queued' "
               "ELSE recipients.state END")


@dataclass(frozen=True)
class Claim:
    """One recipient message taken by one modem: every part goes through that modem."""
    recipient_id: int
    broadcast_id: int
    phone: str
    text: str
    parts_count: int
    attempts: int          # including this one
    priority_rank: int     # RANK_FIRST, RANK_EMERGENCY, RANK_ROUTINE
    modem: str
    first_seq: int = 1     # a resumed message sends from this part on…
    reference: int | None = None  # …with the concatenation reference its first parts had

    @property
    def emergency(self) -> bool:
        return self.priority_rank <= RANK_EMERGENCY


def should_resend(policy: str, priority_rank: int) -> bool:
    """The uncertain policy: resend a message that may already have gone out?"""
    if policy not in RESEND_POLICIES:
        raise ValueError(f"unknown resend_uncertain policy {policy!r}")
    return policy == "always" or (policy == "emergency" and priority_rank <= RANK_EMERGENCY)


# No daily limit given: any message could fit one day.
_NO_LIMIT = 1 << 40


def claimable(conn: sqlite3.Connection, modem: str, now: float, *, max_parts: int,
              daily_limit: int | None = None) -> bool:
    """Whether *modem* would find a message to send now within *max_parts* (its budget):
    a modem with SMS due rings nobody (appliance.ringing)."""
    if max_parts <= 0:
        return False
    params = {"now": now, "max_parts": max_parts, "modem": modem,
              "daily_limit": daily_limit or _NO_LIMIT}
    return conn.execute(_CLAIM_NEXT, params).fetchone() is not None


def claim(db: sqlite_utils.Database, modem: str, now: float, *, max_parts: int,
          daily_limit: int | None = None) -> Claim | None:
    """Claim the next due recipient message that fits in *max_parts* (today's budget).

    A message that does not fit on this SIM today stays queued for another SIM, or for
    the room to come back; one of the same priority that fits further down the order is
    taken instead, so the budget sends what fits, in order. A lower priority never goes
    ahead of a message waiting for room, unless that message is longer than this SIM's
    *daily_limit* could ever take.
    """
    if max_parts <= 0:
        return None
    params = {"now": now, "max_parts": max_parts, "modem": modem,
              "daily_limit": daily_limit or _NO_LIMIT}
    # An idle worker looks often: a read first, so that finding nothing takes no write lock
    # from the web UI (the claim below reads again, under the lock).
    if db.conn.execute(_CLAIM_NEXT, params).fetchone() is None:
        return None
    with write(db) as conn:
        row = conn.execute(_CLAIM_NEXT, params).fetchone()
        if row is None:
            return None
        changed = conn.execute(
            "UPDATE recipients SET state = 'sending', modem = ?, claimed_at = ?, "
            "attempts = attempts + 1 WHERE id = ? AND state = 'queued'",
            [modem, now, row["id"]]).rowcount
        if changed != 1:  # another writer took it between our read and our update
            return None
        first = row["resume_from"] if row["resuming"] else 1
        if not row["resuming"] and row["resume_from"]:
            _whole_again(conn, row, modem)
        # Parts of an earlier attempt start afresh (from where a resumed one stopped).
        conn.execute("UPDATE parts SET state = 'queued', modem = NULL, mr = NULL, "
                     "sending_at = NULL, submitted_at = NULL, report_at = NULL, "
                     "report_status = NULL, error = NULL WHERE recipient_id = ? AND seq >= ?",
                     [row["id"], first])
        conn.execute("UPDATE broadcasts SET state = 'sending', started_at = "
                     "coalesce(started_at, ?) WHERE id = ? AND state = 'queued'",
                     [now, row["broadcast_id"]])
    return Claim(recipient_id=row["id"], broadcast_id=row["broadcast_id"], phone=row["phone"],
                 text=row["text"], parts_count=row["parts_count"],
                 attempts=row["attempts"] + 1, priority_rank=row["priority_rank"], modem=modem,
                 first_seq=first, reference=row["concat_ref"] if row["resuming"] else None)


def _whole_again(conn: sqlite3.Connection, row: sqlite3.Row, modem: str) -> None:
    """A message stopped half-way that its own modem could not finish in time: sent whole
    by *modem*, visibly (the phone may show the first parts on their own too)."""
    conn.execute("UPDATE recipients SET resume_from = NULL, resume_modem = NULL, "
                 "resume_until = NULL, reason = 'whole_again' WHERE id = ?", [row["id"]])
    audit.record(conn, ACTOR, "recipient_partial_send", recipient_id=row["id"],
                 broadcast_id=row["broadcast_id"], parts_sent=row["resume_from"] - 1,
                 parts=row["parts_count"], outcome="whole_again", modem=modem)


def part_sending(db: sqlite_utils.Database, c: Claim, seq: int, now: float) -> None:
    """Record, before the AT command, that part *seq* is about to be handed to the modem."""
    with write(db) as conn:
        _mark_sending(conn, c, seq, now)


def _mark_sending(conn: sqlite3.Connection, c: Claim, seq: int, now: float | None) -> None:
    if seq == c.first_seq and c.reference is not None:
        # Before the first AT+CMGS of this attempt: a stop after it resumes with it.
        conn.execute("UPDATE recipients SET concat_ref = ? WHERE id = ?",
                     [c.reference, c.recipient_id])
    conn.execute(
        "INSERT INTO parts (recipient_id, seq, state, modem, sending_at) "
        "VALUES (?, ?, 'sending', ?, ?) ON CONFLICT (recipient_id, seq) DO UPDATE SET "
        "state = 'sending', modem = excluded.modem, sending_at = excluded.sending_at, "
        "mr = NULL, submitted_at = NULL, report_at = NULL, report_status = NULL, "
        "error = NULL", [c.recipient_id, seq, c.modem, now])


@dataclass(frozen=True)
class Accepted:
    """The modem's answer to one part (its TP-MR), to be committed with the next write.

    The worker commits it in the same transaction as the next part's 'sending' mark (or
    that part's hand-over, while the modem sends it), so one commit, not two, sits between
    two sends; see docs/crash-safety.md for why no crash outcome changes.
    """
    claim: Claim
    seq: int
    mr: int
    at: float
    last: bool


def record_answers(db: sqlite_utils.Database, answers: Sequence[Accepted], *,
                   unprepare: bool = False) -> None:
    """Commit the modem's answers to parts sent (normally one); with *unprepare*, the part
    after the last of them goes back to 'queued' in the same commit (see part_submitted)."""
    with write(db) as conn:
        for a in answers:
            record_accepted(conn, a)
        if unprepare and answers:
            _unmark_after(conn, answers[-1].claim, answers[-1].seq)


def part_submitted(db: sqlite_utils.Database, c: Claim, seq: int, mr: int, now: float, *,
                   last: bool, unprepare: bool = False) -> None:
    """Record the modem's TP-MR for part *seq*; the last part makes the message submitted.

    *unprepare*: the next part, marked 'sending' ahead (see part_in_flight), must wait for
    the SIM's pace after all; it goes back to 'queued' so that a crash during the wait is
    "stopped between two parts" (resent visibly), not "in flight" (uncertain).
    """
    record_answers(db, [Accepted(c, seq, mr, now, last)], unprepare=unprepare)


def record_accepted(conn: sqlite3.Connection, a: Accepted) -> None:
    """Part *a.seq* submitted with its TP-MR, inside the caller's transaction."""
    conn.execute("UPDATE parts SET state = 'submitted', mr = ?, submitted_at = ? "
                 "WHERE recipient_id = ? AND seq = ?", [a.mr, a.at, a.claim.recipient_id, a.seq])
    if a.last:
        # Only a message still ours: a report may already have moved it on (fast SMSC).
        conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = ? "
                     "WHERE id = ? AND state = 'sending'", [a.at, a.claim.recipient_id])


def begin_claimed(db: sqlite_utils.Database, c: Claim, now: float, *,
                  accepted: Sequence[Accepted] = ()) -> str:
    """Begin a message claimed ahead: its part 1 marked 'sending', in one transaction with
    the answer to the part before (*accepted*), if the claim still stands.

    Returns 'begun'; 'cancelled' when its broadcast was cancelled meanwhile (nothing is
    begun after a cancel); 'outranked' when an emergency message became due meanwhile
    (the claim is handed back, the emergency goes first).
    """
    with write(db) as conn:
        for a in accepted:
            record_accepted(conn, a)
        if not _still_claimed(conn, c):
            return "cancelled"
        if _outranked(conn, c, now):
            _unclaim(conn, c, now)
            return "outranked"
        _mark_sending(conn, c, c.first_seq, now)
        return "begun"


def _unmark_after(conn: sqlite3.Connection, c: Claim, seq: int) -> None:
    """Parts after *seq* marked 'sending' ahead (part_in_flight) that were not handed over."""
    conn.execute("UPDATE parts SET state = 'queued', sending_at = NULL WHERE recipient_id = ? "
                 "AND seq > ? AND state = 'sending'", [c.recipient_id, seq])


def part_in_flight(db: sqlite_utils.Database, c: Claim, seq: int, handed_at: float, *,
                   prepare: bool, accepted: Sequence[Accepted] = ()) -> None:
    """The bookkeeping done while the modem sends part *seq*, off the critical path.

    In one transaction: the answer to the part before (*accepted*: the part of the same
    message the modem answered just before it was given this one, and any answer an
    earlier commit failed to record), when part *seq* was
    handed over (the pace and the daily budget count from it) and, with *prepare*, part
    seq+1 of the same message marked 'sending' ahead of its AT+CMGS. That mark is what
    crash recovery relies on, and it costs nothing in certainty: if the daemon dies before
    part seq+1 goes out, part *seq* is in flight or just answered, so the message is
    uncertain either way. part_submitted() takes the mark back when the SIM's pace makes
    part seq+1 wait.
    """
    with write(db) as conn:
        for a in accepted:
            record_accepted(conn, a)
        conn.execute("UPDATE parts SET sending_at = ? WHERE recipient_id = ? AND seq = ?",
                     [handed_at, c.recipient_id, seq])
        if prepare:
            # sending_at stays empty until the part is handed over: the pace counts from then.
            _mark_sending(conn, c, seq + 1, None)


def still_claimed(db: sqlite_utils.Database, c: Claim) -> bool:
    """Whether a message claimed ahead is still ours to begin (not cancelled meanwhile)."""
    return _still_claimed(db.conn, c)


def _still_claimed(conn: sqlite3.Connection, c: Claim) -> bool:
    row = conn.execute("SELECT state FROM recipients WHERE id = ?", [c.recipient_id]).fetchone()
    return row is not None and row["state"] == "sending"


def outranked(db: sqlite_utils.Database, c: Claim, now: float) -> bool:
    """Whether an emergency message became due after *c*, a routine one, was claimed
    ahead: the emergency goes first, and *c* is handed back."""
    return _outranked(db.conn, c, now)


def _outranked(conn: sqlite3.Connection, c: Claim, now: float) -> bool:
    if c.priority_rank <= RANK_EMERGENCY:
        return False
    return conn.execute(f"SELECT 1 {_DUE} AND r.priority_rank < :rank LIMIT 1",
                        {"now": now, "rank": c.priority_rank}).fetchone() is not None


def unclaim(db: sqlite_utils.Database, c: Claim, now: float) -> None:
    """Hand back a message claimed ahead (during the previous message's last part) that
    was never begun: the modem stopped, or the daemon is stopping. Nothing of it reached
    the modem, so it is queued again for any modem and the attempt is not counted."""
    with write(db) as conn:
        _unclaim(conn, c, now)


def _unclaim(conn: sqlite3.Connection, c: Claim, now: float) -> None:
    conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                 "attempts = max(attempts - 1, 0) WHERE id = ? AND state = 'sending' "
                 f"AND {NOT_BEGUN}", [now, c.recipient_id])


def _end_part(conn: sqlite3.Connection, c: Claim, seq: int, state: str, error: str) -> None:
    conn.execute("UPDATE parts SET state = ?, error = ? WHERE recipient_id = ? AND seq = ?",
                 [state, error, c.recipient_id, seq])
    _unmark_after(conn, c, seq)


def retry_delay(attempts: int, backoff: float, backoff_max: float) -> float:
    """The back-off of a recipient whose own sends keep failing: nothing after the first
    failure (a recipient is claimed in the order it became due, so it goes behind those
    already waiting and the modem never idles for it), then *backoff* doubling up to
    *backoff_max*."""
    if attempts <= 1:
        return 0.0
    return min(backoff_max, backoff * 2 ** min(attempts - 2, 30))


def retry_or_fail(db: sqlite_utils.Database, c: Claim, seq: int, error: str, now: float, *,
                  permanent: bool, delay: float, give_up: bool = True, max_attempts: int = 1,
                  reason: str | None = None) -> str:
    """The modem refused part *seq*: fail the message, or queue it again after *delay*
    seconds; returns the state.

    A permanent error (unknown number, barred…) fails it at once; with *give_up* (an error
    we do not know to pass) so does the *max_attempts*-th attempt. Without it (congestion,
    a network out of order: what an earthquake brings) it is tried until it goes or staff
    cancel. *reason* is the key staff read (appliance.error_policy). A long message whose
    first parts went out goes on from part *seq* (see stop_half_way).
    """
    with write(db) as conn:
        _end_part(conn, c, seq, "failed", error)
        if permanent or (give_up and c.attempts >= max_attempts):
            why = error if permanent else f"{error} (gave up after {c.attempts} attempts)"
            conn.execute("UPDATE recipients SET state = 'failed', failed_at = ?, "
                         "last_error = ?, reason = ? WHERE id = ?",
                         [now, why, reason if permanent else "gave_up", c.recipient_id])
            _note_partial_send(conn, c, seq, "failed")
            return "failed"
        resumed = stop_half_way(conn, c.recipient_id, seq, c.modem, now)
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "last_error = ?, reason = ? WHERE id = ?",
                     [now + delay, _resend_note(conn, c, seq, error, resumed), reason,
                      c.recipient_id])
        _note_partial_send(conn, c, seq, "resumed" if resumed else "resent")
        return "queued"


def release(db: sqlite_utils.Database, c: Claim, seq: int, error: str, now: float, *,
            reason: str | None = None) -> None:
    """The modem failed, not the message: hand it back, attempt not counted. A long message
    whose first parts went out waits for this modem to finish it, while it can (see
    stop_half_way); any other goes to any modem at once."""
    with write(db) as conn:
        _end_part(conn, c, seq, "failed", error)
        resumed = stop_half_way(conn, c.recipient_id, seq, c.modem, now)
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "attempts = max(attempts - 1, 0), last_error = ?, reason = ? WHERE id = ?",
                     [now, _resend_note(conn, c, seq, error, resumed), reason, c.recipient_id])
        _note_partial_send(conn, c, seq, "resumed" if resumed else "resent")


def stop_half_way(conn: sqlite3.Connection, recipient_id: int, seq: int, modem: str | None,
                  now: float, *, uncertain: bool = False) -> bool:
    """A long message stopped at part *seq*: record where to resume, when it can.

    It can when parts 1..seq-1 reached the network through *modem* and their concatenation
    reference is known: parts seq..n then go through the same modem with the same
    reference, and the phone joins them into one message — instead of a fragment plus a
    whole second copy. With *uncertain*, part *seq* itself may have arrived: it is sent
    again too, and a phone drops a part it already has (same sender, reference and
    number). Returns whether it will resume; otherwise the whole message goes again.
    """
    row = conn.execute("SELECT parts_count, concat_ref FROM recipients WHERE id = ?",
                       [recipient_id]).fetchone()
    sent = conn.execute("SELECT count(*) FROM parts WHERE recipient_id = ? AND seq < ? AND "
                        "state IN ('submitted', 'delivered')", [recipient_id, seq]).fetchone()[0]
    resumable = (row is not None and row["parts_count"] > 1 and row["concat_ref"] is not None
                 and modem is not None and sent == seq - 1 and (sent > 0 or uncertain))
    if resumable:
        conn.execute("UPDATE recipients SET resume_from = ?, resume_modem = ?, "
                     "resume_until = ? WHERE id = ?",
                     [seq, modem, now + RESUME_WINDOW, recipient_id])
    else:
        conn.execute("UPDATE recipients SET resume_from = NULL, resume_modem = NULL, "
                     "resume_until = NULL WHERE id = ?", [recipient_id])
    return resumable


def uncertain(db: sqlite_utils.Database, c: Claim, seq: int, error: str, now: float, *,
              policy: str) -> str:
    """Part *seq* may or may not have gone out (no answer to AT+CMGS, port gone mid-send).

    Resent (visibly) or left 'uncertain' for staff per the resend_uncertain policy;
    returns the recipient's new state.
    """
    resend = should_resend(policy, c.priority_rank)
    with write(db) as conn:
        _end_part(conn, c, seq, "uncertain", error)
        return settle_uncertain(conn, c.recipient_id, c.broadcast_id, seq, c.parts_count,
                                 error, now, resend=resend, modem=c.modem)


def settle_uncertain(conn: sqlite3.Connection, recipient_id: int, broadcast_id: int,
                      seq: int, parts_count: int, error: str, now: float, *,
                      resend: bool, modem: str | None) -> str:
    where = f"part {seq}/{parts_count}"
    if resend:
        if stop_half_way(conn, recipient_id, seq, modem, now, uncertain=True):
            note = (f"uncertain ({where}: {error}) — parts {seq}-{parts_count} sent again "
                    "with the same reference (the phone keeps one of each)")
        else:
            note = f"uncertain ({where}: {error}) — resent"
        conn.execute("UPDATE recipients SET state = 'queued', next_attempt_at = ?, "
                     "last_error = ?, reason = 'uncertain_resent' WHERE id = ?",
                     [now, note, recipient_id])
        audit.record(conn, ACTOR, "recipient_resent", recipient_id=recipient_id,
                     broadcast_id=broadcast_id, reason=note)
        return "queued"
    note = f"uncertain ({where}: {error}) — may or may not have been sent; not resent"
    conn.execute("UPDATE recipients SET state = 'uncertain', last_error = ?, "
                 "reason = 'uncertain' WHERE id = ?", [note, recipient_id])
    audit.record(conn, ACTOR, "recipient_uncertain", recipient_id=recipient_id,
                 broadcast_id=broadcast_id, reason=note)
    return "uncertain"


def _sent_before(conn: sqlite3.Connection, c: Claim, seq: int) -> int:
    return conn.execute("SELECT count(*) FROM parts WHERE recipient_id = ? AND seq < ? "
                        "AND state IN ('submitted', 'delivered')",
                        [c.recipient_id, seq]).fetchone()[0]


def _resend_note(conn: sqlite3.Connection, c: Claim, seq: int, error: str,
                 resumed: bool = False) -> str:
    sent = _sent_before(conn, c, seq)
    if sent and resumed:
        return (f"{error}; parts 1-{sent} of {c.parts_count} had gone out — the rest is "
                "sent with the same reference, and the phone joins them")
    if sent:
        return (f"{error}; parts 1-{sent} of {c.parts_count} had gone out — "
                "the whole message is sent again")
    return error


def _note_partial_send(conn: sqlite3.Connection, c: Claim, seq: int, outcome: str) -> None:
    """Audit a message of which some parts reached the network before it stopped.

    The phone may show those parts on their own; the audit row is what makes the whole
    resend (or the failure) traceable to this recipient.
    """
    sent = _sent_before(conn, c, seq)
    if sent:
        audit.record(conn, ACTOR, "recipient_partial_send", recipient_id=c.recipient_id,
                     broadcast_id=c.broadcast_id, parts_sent=sent, parts=c.parts_count,
                     outcome=outcome)
