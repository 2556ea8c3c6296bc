"""Replies: every inbound SMS is kept; one from a number we recently wrote to acknowledges
that recipient, with the reply choice when the broadcast offered choices.

"1", "１", "1 行きます", "① 行きます" and the choice's own words all pick choice 1. An inbound
message nobody can be matched to stays in the inbox for staff.
"""
from __future__ import annotations

import json
import re
import sqlite3
import unicodedata

from . import phone

MATCH_WINDOW = 7 * 24 * 3600   # a reply to a broadcast older than a week is not an answer to it
_LEADING_DIGIT = re.compile(r"\s*([1-9])(?!\d)")


def parse_choice(text: str, choices: list[str]) -> int | None:
    """The 1-based choice a reply picks, or None."""
    if not choices:
        return None
    folded = unicodedata.normalize("NFKC", text).strip()
    match = _LEADING_DIGIT.match(folded)
    if match and int(match.group(1)) <= len(choices):
        return int(match.group(1))
    for i, choice in enumerate(choices, start=1):
        if unicodedata.normalize("NFKC", choice).strip() == folded:
            return i
    return None


def _number(sender: str) -> str:
    try:
        return phone.normalise_mobile(sender)
    except phone.PhoneError:
        return sender  # kept as the network gave it: staff can still read it


def record(conn: sqlite3.Connection, modem: str, *, sender: str, text: str,
           sent_at: float | None, now: float) -> int:
    """Store an inbound message and acknowledge its recipient (inside a write transaction).

    The same message seen twice (read from the modem's store again after a crash before it
    was deleted) is stored once.
    """
    number = _number(sender)
    same = conn.execute("SELECT id FROM inbound_messages WHERE number = ? AND text = ? AND "
                        "sent_at IS ?", [number, text, sent_at]).fetchone()
    if same and sent_at is not None:
        return same[0]
    recipient = conn.execute(
        "SELECT r.id, r.broadcast_id, b.choices FROM recipients r JOIN broadcasts b "
        "ON b.id = r.broadcast_id WHERE r.phone = ? AND r.state IN "
        "('submitted', 'delivered', 'sending', 'uncertain', 'failed') AND b.created_at >= ? "
        "ORDER BY r.id DESC LIMIT 1", [number, now - MATCH_WINDOW]).fetchone()
    choice = None
    if recipient is not None:
        choices = json.loads(recipient["choices"]) if recipient["choices"] else []
        choice = parse_choice(text, choices)
    inbound_id = conn.execute(
        "INSERT INTO inbound_messages (modem, number, text, sent_at, received_at, recipient_id, "
        "broadcast_id, choice) VALUES (?,?,?,?,?,?,?,?)",
        [modem, number, text, sent_at, now, recipient["id"] if recipient else None,
         recipient["broadcast_id"] if recipient else None, choice]).lastrowid
    if recipient is not None:
        # A later reply with a choice overrides an earlier one; a chatty one does not erase it.
        conn.execute("UPDATE recipients SET acknowledged_at = coalesce(acknowledged_at, ?), "
                     "reply_id = ?, choice = coalesce(?, choice) WHERE id = ?",
                     [now, inbound_id, choice, recipient["id"]])
    return inbound_id


def unhandled_count(conn: sqlite3.Connection) -> int:
    """Inbound messages nobody has marked handled yet (the menu's and dashboard's 未対応)."""
    return conn.execute("SELECT count(*) FROM inbound_messages WHERE handled_at IS NULL"
                        ).fetchone()[0]


def inbox(conn: sqlite3.Connection, *, unmatched_only: bool = False,
          unhandled_only: bool = False, limit: int = 100, offset: int = 0) -> list[dict]:
    clauses = (["i.recipient_id IS NULL"] if unmatched_only else []) + (
        ["i.handled_at IS NULL"] if unhandled_only else [])
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = conn.execute(
        f"SELECT i.*, r.name AS recipient_name, b.title AS broadcast_title, "
        f"b.choices AS broadcast_choices, c.name AS contact_name "
        f"FROM inbound_messages i LEFT JOIN recipients r ON r.id = i.recipient_id "
        f"LEFT JOIN broadcasts b ON b.id = i.broadcast_id "
        f"LEFT JOIN contacts c ON c.phone = i.number {where} "
        f"ORDER BY i.received_at DESC, i.id DESC LIMIT ? OFFSET ?", [limit, offset]).fetchall()
    out = []
    for r in rows:
        item = dict(r)
        choices = json.loads(item.pop("broadcast_choices") or "[]")
        # The choice the reply picked, in words ("2 来院できない"), for the inbox.
        item["choice_text"] = (f"{r['choice']} {choices[r['choice'] - 1]}"
                               if r["choice"] and r["choice"] <= len(choices) else None)
        out.append(item)
    return out


def since(conn: sqlite3.Connection, *, after_id: int = 0, after: float | None = None,
          limit: int = 100) -> list[dict]:
    """Inbound messages in the order they arrived, after a cursor (an id already seen) and/or
    a time, with who sent them and what they answered: the API's GET /inbox."""
    rows = conn.execute(
        "SELECT i.*, c.id AS contact_id, c.patient_id, b.choices FROM inbound_messages i "
        "LEFT JOIN recipients r ON r.id = i.recipient_id "
        "LEFT JOIN contacts c ON c.id = coalesce(r.contact_id, "
        "(SELECT id FROM contacts WHERE phone = i.number)) "
        "LEFT JOIN broadcasts b ON b.id = i.broadcast_id "
        "WHERE i.id > ? AND i.received_at >= ? ORDER BY i.id LIMIT ?",
        [after_id, after if after is not None else float("-inf"), limit]).fetchall()
    out = []
    for r in rows:
        item = dict(r)
        choices = json.loads(r["choices"]) if r["choices"] else []
        item["choice_text"] = (choices[r["choice"] - 1]
                               if r["choice"] and r["choice"] <= len(choices) else None)
        out.append(item)
    return out


def mark_handled(conn: sqlite3.Connection, inbound_id: int, *, actor: str, now: float) -> None:
    from . import audit
    conn.execute("UPDATE inbound_messages SET handled_by = ?, handled_at = ? WHERE id = ?",
                 [actor, now, inbound_id])
    audit.record(conn, actor, "inbound_handled", inbound_id=inbound_id)
