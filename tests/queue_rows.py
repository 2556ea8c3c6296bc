"""Rows for the send queue, written straight into a test database.

The dispatcher's unit tests need broadcasts and recipient messages in exact states
(a claimed message whose part 1 is in flight, a scheduled broadcast…) that the domain API
would only reach through a whole send; these helpers write them as the schema defines.
"""
from __future__ import annotations

import sqlite_utils

from appliance.db import write
from modem import pdu

TEXT_2_PARTS = ("【つなぐ透析クリニック】停電のため本日の透析は中止です。自宅で待機してください。"
                "再開の見込みが立ちましたら改めてご連絡します。ご不明な点は病院までお電話ください。")


def add_broadcast(db: sqlite_utils.Database, count: int, *, text: str = "本日の透析は中止です",
                  priority: str = "routine", state: str = "queued", first_number: int = 0,
                  created_at: float = 0.0) -> tuple[int, list[int]]:
    """A broadcast with *count* queued recipient messages; returns (id, recipient ids)."""
    parts = pdu.count(text).parts
    rank = 0 if priority == "emergency" else 1
    with write(db) as conn:
        bid = conn.execute(
            "INSERT INTO broadcasts (title, text, priority, created_by, created_at, state) "
            "VALUES (?, ?, ?, 'test', ?, ?)", [text[:20], text, priority, created_at, state]
        ).lastrowid
        ids = [conn.execute(
            "INSERT INTO recipients (broadcast_id, name, phone, text, parts_count, "
            "priority_rank) VALUES (?, ?, ?, ?, ?, ?)",
            [bid, f"患者{i}", number(first_number + i), text, parts, rank]).lastrowid
            for i in range(count)]
    return bid, ids


def number(i: int) -> str:
    return f"+8190{10000000 + i:08d}"


def recipient(db: sqlite_utils.Database, rid: int) -> dict:
    return dict(db.conn.execute("SELECT * FROM recipients WHERE id = ?", [rid]).fetchone())


def parts(db: sqlite_utils.Database, rid: int) -> list[dict]:
    return [dict(r) for r in db.conn.execute(
        "SELECT * FROM parts WHERE recipient_id = ? ORDER BY seq", [rid])]


def states(db: sqlite_utils.Database) -> dict[str, int]:
    return {r[0]: r[1] for r in db.conn.execute(
        "SELECT state, count(*) FROM recipients GROUP BY state")}
