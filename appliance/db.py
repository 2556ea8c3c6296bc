"""The one SQLite database: connection settings, migrations and write transactions.

The database is the only channel between the daemon, the web UI and the readiness
check, so every process opens it the same way: WAL (readers never block the writer),
synchronous=FULL (a power cut loses no committed row), foreign keys on, and a busy
timeout long enough for the other process's short write transactions.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from .migrations import migrations

BUSY_TIMEOUT_MS = 10_000


def connect(path: str | Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open the database at *path* (created when missing) and apply pending migrations."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see write()), so the
    # sqlite3 module must not open implicit deferred transactions behind our back.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if migrate:
        migrations.apply(db)
    conn.set_authorizer(_service_may)
    return db


def connect_read_only(path: str | Path) -> sqlite_utils.Database:
    """Open the database for reading only, for when connect() cannot: a full or read-only
    disk where SQLite cannot make the files a writer needs (-wal, -shm).

    Without those files the database file holds every committed row (a clean close folds
    the log into it), so it is opened as immutable: nothing can change it on such a disk.
    """
    path = Path(path)
    wal = Path(f"{path}-wal")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        if wal.exists() and wal.stat().st_size > 0:
            raise  # rows still in the log: an immutable open would not see them
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return sqlite_utils.Database(conn)


_AUDIT = "audit_log"


def _service_may(action: int, arg1, arg2, _database, _trigger) -> int:
    """What the appliance's own connections may do to the audit log: add rows, read them.

    Triggers already refuse UPDATE and DELETE; this also refuses dropping those triggers or
    the table, and writable_schema, so no code path of the service can remove evidence (a
    bug, or an injected statement). Migrations run before it is set. See docs/security.md
    for what remains possible to someone with the file itself.
    """
    if action in (sqlite3.SQLITE_DELETE, sqlite3.SQLITE_DROP_TABLE,
                  sqlite3.SQLITE_ALTER_TABLE) and (arg1 == _AUDIT or arg2 == _AUDIT):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_UPDATE and arg1 == _AUDIT:
        return sqlite3.SQLITE_DENY
    if action in (sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_TRIGGER):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@contextlib.contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """A write transaction taken with BEGIN IMMEDIATE.

    Taking the write lock up front means a conditional UPDATE that claims work and the
    reads before it see the same snapshot, and a second writer waits (busy_timeout)
    instead of failing half-way with SQLITE_BUSY on upgrade.
    """
    conn = db.conn
    lock = _writer_lock(db)
    if not lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
        raise sqlite3.OperationalError("database is locked (by another thread of this process)")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
    finally:
        lock.release()


_WRITER_LOCKS: dict[str, threading.Lock] = {}
# Each connection's lock, looked up once (the path query is not free on the send path).
_LOCK_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(db: sqlite_utils.Database) -> threading.Lock:
    """One lock per database file for the threads of this process (the daemon's workers,
    its report recorder, its heartbeat).

    SQLite's own wait for a busy database sleeps 1, 2, 5… ms between tries, so a worker
    beginning a message while another thread commits would lose at least a millisecond; a
    thread waiting here goes on the moment the other commits. Other processes (the web UI)
    still meet the busy timeout.
    """
    with _WRITER_LOCKS_GUARD:
        lock = _LOCK_OF.get(db)
        if lock is None:
            row = db.conn.execute("PRAGMA database_list").fetchone()
            path = row[2] if row is not None else ""
            # In-memory or temporary databases: a lock of their own (nobody shares them).
            lock = _WRITER_LOCKS.setdefault(path, threading.Lock()) if path else threading.Lock()
            _LOCK_OF[db] = lock
    return lock


def now() -> float:
    """Wall-clock time as stored in every *_at column: Unix seconds, UTC."""
    return time.time()
