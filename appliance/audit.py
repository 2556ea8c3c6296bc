"""The append-only audit log, kept as evidence: who did what, when, from where, and what
changed (old → new).

Rows are written inside the same transaction as the change they describe, so a change
and its audit row are committed (or rolled back) together. Each row carries a hash that
covers its own content and the previous row's hash (a hash chain): `verify()` recomputes
it and finds a row that was edited, deleted or moved. The last row's hash (the chain head)
is copied beside every backup; checking the chain against those copies also finds rows cut
off the end. What SQLite can and cannot enforce is in docs/security.md.

The service's own connections (appliance.db.connect) refuse UPDATE and DELETE on the log and
DROP TRIGGER, so no code path of the appliance can change it; triggers refuse the same for
any connection. Someone with a shell and write access to the database file can still change
the file itself — the chain is what shows it.

Details are JSON (ensure_ascii=False: Japanese stays readable). A change to a contact keeps
its old and new values, names and numbers included: the log is shown to admins only and is
in the encrypted backups.
"""
from __future__ import annotations

import contextvars
import csv
import datetime as dt
import hashlib
import io
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .db import now
from .roster_csv import defuse


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    detail: dict[str, Any]
    remote_addr: str | None
    hash: str | None = None


GENESIS = "0" * 64


def row_hash(previous: str, row_id: int, at: float, actor: str, action: str,
             detail: str | None, remote_addr: str | None) -> str:
    """The chain: SHA-256 over the previous row's hash and this row's every column."""
    content = json.dumps([row_id, repr(float(at)), actor, action, detail, remote_addr],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{previous}|{content}".encode("utf-8")).hexdigest()


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
    connection = _connection(conn)
    if connection.in_transaction:
        return _append(connection, actor, action, text, remote_addr)
    # Outside a transaction (a read recorded on its own): the chain's last link is read and
    # extended under the write lock, or two writers could both link to the same row.
    connection.execute("BEGIN IMMEDIATE")
    try:
        row_id = _append(connection, actor, action, text, remote_addr)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return row_id


def _append(conn: sqlite3.Connection, actor: str, action: str, text: str | None,
            remote_addr: str | None) -> int:
    last = conn.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    row_id = (last[0] + 1) if last else 1
    at = now()
    digest = row_hash(last[1] if last and last[1] else GENESIS, row_id, at, actor, action, text,
                      remote_addr)
    conn.execute("INSERT INTO audit_log (id, at, actor, action, detail, remote_addr, hash) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", [row_id, at, actor, action, text, remote_addr,
                                                  digest])
    return row_id


def entries(db: sqlite3.Connection | sqlite_utils.Database, limit: int = 100, offset: int = 0,
            action: str | None = None, actor: str | None = None) -> list[AuditEntry]:
    """The newest entries first, optionally only one action and/or one actor."""
    where, params = _filter(action, actor)
    rows = _connection(db).execute(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, int(limit), int(offset)]).fetchall()
    return [_entry(r) for r in rows]


def _entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(id=r["id"], at=r["at"], actor=r["actor"], action=r["action"],
                      detail=json.loads(r["detail"]) if r["detail"] else {},
                      remote_addr=r["remote_addr"], hash=r["hash"])


def count(db: sqlite3.Connection | sqlite_utils.Database, action: str | None = None,
          actor: str | None = None) -> int:
    where, params = _filter(action, actor)
    return _connection(db).execute(f"SELECT count(*) FROM audit_log {where}",
                                   params).fetchone()[0]


def actions(db: sqlite3.Connection | sqlite_utils.Database) -> list[str]:
    """Every action name the log holds."""
    return [r[0] for r in _connection(db).execute("SELECT DISTINCT action FROM audit_log")]


def _filter(action: str | None = None, actor: str | None = None, since: float | None = None,
            until: float | None = None) -> tuple[str, list]:
    conditions = (("action = ?", action), ("actor = ?", actor), ("at >= ?", since),
                  ("at < ?", until))
    given = [(clause, value) for clause, value in conditions if value is not None]
    where = "WHERE " + " AND ".join(clause for clause, _ in given) if given else ""
    return where, [value for _, value in given]


# -- the chain as evidence --------------------------------------------------------------

@dataclass(frozen=True)
class Head:
    """The chain's last link: the row id and its hash (copied beside every backup)."""
    id: int
    hash: str

    def to_json(self) -> str:
        return json.dumps({"audit_head_id": self.id, "audit_head_hash": self.hash})

    @classmethod
    def from_json(cls, text: str) -> Head:
        data = json.loads(text)
        return cls(int(data["audit_head_id"]), str(data["audit_head_hash"]))


@dataclass
class Verification:
    rows: int = 0
    head: Head | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def head(db) -> Head | None:
    row = _connection(db).execute("SELECT id, hash FROM audit_log ORDER BY id DESC "
                                  "LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else None


def verify(db, heads: list[tuple[str, Head]] = ()) -> Verification:
    """Recompute the chain; every problem found is one line naming the row.

    *heads*: (where it came from, Head) copies of earlier chain heads, e.g. beside the
    backups — a head the log no longer has means rows were removed from its end (or the
    log was rewritten) since that copy was made.
    """
    result = Verification()
    conn = _connection(db)
    previous, expected_id = GENESIS, None
    hashes: dict[int, str] = {}
    for r in conn.execute("SELECT * FROM audit_log ORDER BY id"):
        result.rows += 1
        if expected_id is not None and r["id"] != expected_id:
            result.problems.append(
                f"rows {expected_id}–{r['id'] - 1} are missing (deleted) / "
                f"{expected_id}〜{r['id'] - 1}行目が削除されています")
        recomputed = row_hash(previous, r["id"], r["at"], r["actor"], r["action"], r["detail"],
                              r["remote_addr"])
        if r["hash"] != recomputed:
            result.problems.append(
                f"row {r['id']} does not match the chain: it was edited, or rows before it "
                f"were deleted or reordered / {r['id']}行目が改ざんされたか、その前の行が削除・"
                "並べ替えされています")
        previous, expected_id = r["hash"] or "", r["id"] + 1
        hashes[r["id"]] = r["hash"]
    if expected_id is not None:
        result.head = Head(expected_id - 1, previous)
    for source, saved in heads:
        if hashes.get(saved.id) != saved.hash:
            result.problems.append(
                f"the log no longer holds row {saved.id} as it was when {source} was made: "
                f"rows were removed from its end or it was rewritten / {source} の時点の"
                f"{saved.id}行目が失われているか書き換えられています")
    return result


def saved_heads(directory: Path) -> list[tuple[str, Head]]:
    """The chain heads saved beside backups in *directory* (unreadable ones are skipped
    with a problem of their own in `verify`'s caller: a head is evidence, not config)."""
    found = []
    for path in sorted(Path(directory).glob("*.audit-head")):
        try:
            found.append((path.name, Head.from_json(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError):
            continue  # a damaged copy proves nothing either way; the others still count
    return found


EXPORT_COLUMNS = ("id", "at", "actor", "action", "detail", "remote_addr", "hash")


def export_csv(db, zone, *, since: float | None = None, until: float | None = None) -> bytes:
    """The log as CSV for an inspector (UTF-8 with BOM: Excel opens it), oldest first, with
    times in the clinic's zone and each row's chain hash."""
    where, params = _filter(since=since, until=until)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in _connection(db).execute(f"SELECT * FROM audit_log {where} ORDER BY id", params):
        when = dt.datetime.fromtimestamp(r["at"], zone).isoformat(timespec="milliseconds")
        cells = [r["id"], when, r["actor"], r["action"], r["detail"] or "",
                 r["remote_addr"] or "", r["hash"] or ""]
        # A cell starting with = + - @ is a formula to Excel; defuse keeps it text.
        writer.writerow([defuse(c) if isinstance(c, str) else c for c in cells])
    return out.getvalue().encode("utf-8-sig")
