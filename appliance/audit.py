"""The append-only audit log: who did what, when, from where.

Rows are written inside the same transaction as the change they describe, so a change
and its audit row are committed (or rolled back) together. Triggers in the schema refuse
UPDATE and DELETE on audit_log.

Details are JSON (ensure_ascii=False: Japanese stays readable). Keep patients' numbers out
of details; a contact id is enough to trace a change.
"""
from __future__ import annotations

import contextvars
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .db import now


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    detail: dict[str, Any]
    remote_addr: str | None


# Where the current request comes from (the web UI sets it for each request), so that every
# door's audit rows say "from where" without each function passing it along.
_ORIGIN: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_origin",
                                                                     default=None)


def set_origin(remote_addr: str | None) -> contextvars.Token:
    """Name the client address for the audit rows written until `reset_origin(token)`."""
    return _ORIGIN.set(remote_addr)


def reset_origin(token: contextvars.Token) -> None:
    _ORIGIN.reset(token)


def _connection(conn: sqlite3.Connection | sqlite_utils.Database) -> sqlite3.Connection:
    return conn.conn if isinstance(conn, sqlite_utils.Database) else conn


def record(conn: sqlite3.Connection | sqlite_utils.Database, actor: str, action: str,
           remote_addr: str | None = None, **detail: Any) -> int:
    """Append one audit row and return its id; call it inside the change's transaction."""
    if not actor or not action:
        raise ValueError("an audit row needs an actor and an action")
    remote_addr = remote_addr or _ORIGIN.get()
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None
    cursor = _connection(conn).execute(
        "INSERT INTO audit_log (at, actor, action, detail, remote_addr) VALUES (?, ?, ?, ?, ?)",
        [now(), actor, action, text, remote_addr])
    return cursor.lastrowid


def entries(db: sqlite3.Connection | sqlite_utils.Database, limit: int = 100, offset: int = 0,
            action: str | None = None, actor: str | None = None) -> list[AuditEntry]:
    """The newest entries first, optionally only one action and/or one actor."""
    where, params = _filter(action, actor)
    rows = _connection(db).execute(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, int(limit), int(offset)]).fetchall()
    return [AuditEntry(id=r["id"], at=r["at"], actor=r["actor"], action=r["action"],
                       detail=json.loads(r["detail"]) if r["detail"] else {},
                       remote_addr=r["remote_addr"]) for r in rows]


def count(db: sqlite3.Connection | sqlite_utils.Database, action: str | None = None,
          actor: str | None = None) -> int:
    where, params = _filter(action, actor)
    return _connection(db).execute(f"SELECT count(*) FROM audit_log {where}",
                                   params).fetchone()[0]


def _filter(action: str | None, actor: str | None) -> tuple[str, list[str]]:
    clauses, params = [], []
    if action is not None:
        clauses.append("action = ?")
        params.append(action)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
