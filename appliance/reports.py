"""Delivery reports: matched to the part they report on, and the recipient's state after.

A report names the modem's TP-MR, which is only 8 bits and wraps every 256 sends, so it is
matched to the most recent part sent through the same modem with that TP-MR, within a time
window, that has no final report yet. A recipient is delivered when every part is, failed
as soon as one part fails (the phone cannot show the whole message).
"""
from __future__ import annotations

import sqlite3

from . import error_policy

MATCH_WINDOW = 3 * 24 * 3600   # SMSCs retry for up to ~3 days before a final report


def record(conn: sqlite3.Connection, modem: str, *, mr: int, number: str | None, status: int,
           outcome: str, discharge_at: float | None, now: float) -> int | None:
    """Store one report and apply it (inside a write transaction); returns the part id."""
    part = conn.execute(
        "SELECT p.id, p.recipient_id FROM parts p WHERE p.modem = ? AND p.mr = ? "
        "AND p.state IN ('submitted', 'sending') AND p.submitted_at >= ? "
        "ORDER BY p.submitted_at DESC, p.id DESC LIMIT 1",
        [modem, mr, now - MATCH_WINDOW]).fetchone()
    conn.execute("INSERT INTO delivery_reports (modem, mr, number, status, outcome, "
                 "discharge_at, received_at, part_id) VALUES (?,?,?,?,?,?,?,?)",
                 [modem, mr, number, status, outcome, discharge_at, now,
                  part["id"] if part else None])
    if part is None:
        return None  # unmatched: kept for the record, changes nothing
    if outcome == "pending":  # the SMSC is still trying: note it, wait for the final one
        conn.execute("UPDATE parts SET report_status = ?, report_at = ? WHERE id = ?",
                     [status, now, part["id"]])
        return part["id"]
    conn.execute("UPDATE parts SET state = ?, report_status = ?, report_at = ? WHERE id = ?",
                 [outcome, status, now, part["id"]])
    recipient = part["recipient_id"]
    if outcome == "failed":
        verdict = error_policy.for_report(status)
        conn.execute("UPDATE recipients SET state = 'failed', failed_at = ?, last_error = ?, "
                     "reason = ? WHERE id = ? AND state IN ('submitted', 'sending')",
                     [now, f"the network could not deliver it (status 0x{status:02X}: "
                      f"{verdict.en})", verdict.key, recipient])
    else:
        waiting = conn.execute("SELECT count(*) FROM parts WHERE recipient_id = ? AND "
                               "state != 'delivered'", [recipient]).fetchone()[0]
        if waiting == 0:
            conn.execute("UPDATE recipients SET state = 'delivered', delivered_at = ? "
                         "WHERE id = ? AND state = 'submitted'", [now, recipient])
    return part["id"]
