"""Break-glass: sealed one-time emergency codes, so no security feature ever keeps a nurse
from sending in an emergency.

`tsunagu emergency-codes new` (run by scripts/install.sh, and again whenever one is used)
prints a few long one-time codes to keep sealed in an envelope by the appliance. On the
login page, 緊急ログイン takes one: it opens a staff session (it can send, it cannot manage
accounts) without a password or a second factor, from any device — even one the login
throttle is making wait, even when every account is unusable. Each code works once.

It is loud on purpose: the use is in the audit log (from where, which code), on every
admin's dashboard, and the remaining codes are counted there and by `tsunagu check`.
A code is 20 characters from a 32-letter alphabet (100 bits): it is not throttled, because
it cannot be guessed, and a throttle is exactly what must not stand in its way.
"""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import unicodedata

import sqlite_utils
from werkzeug.security import generate_password_hash

from . import audit, login_throttle
from .db import write
from .users import EMERGENCY_USER, HASH_METHOD, LoginRefused, User, get_user_by_id

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # 32 letters: no 0/O, 1/I
CODE_LENGTH = 20
DEFAULT_COUNT = 3


def _conn(db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def _clean(code: str | None) -> str:
    text = unicodedata.normalize("NFKC", code or "").upper()
    return "".join(c for c in text if c.isalnum())


def _hash(code: str) -> str:
    # 100 random bits: a plain hash cannot be reversed by guessing.
    return hashlib.sha256(_clean(code).encode()).hexdigest()


def new_codes(db: sqlite_utils.Database, *, count: int = DEFAULT_COUNT, actor: str,
              now: float, remote_addr: str | None = None) -> list[str]:
    """New sealed codes; every unused older code stops working (the envelope is replaced)."""
    if not 1 <= count <= 20:
        raise ValueError("count must be 1 to 20")
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
        codes.append("-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4)))
    with write(db) as conn:
        revoked = conn.execute("UPDATE emergency_codes SET revoked_at = ? WHERE used_at IS "
                               "NULL AND revoked_at IS NULL", [now]).rowcount
        conn.executemany("INSERT INTO emergency_codes (code_hash, created_at, created_by) "
                         "VALUES (?, ?, ?)", [(_hash(c), now, actor) for c in codes])
        audit.record(conn, actor, "emergency_codes_new", remote_addr, count=count,
                     revoked=revoked)
    return codes


def unused(db) -> int:
    return _conn(db).execute("SELECT count(*) FROM emergency_codes WHERE used_at IS NULL "
                             "AND revoked_at IS NULL").fetchone()[0]


def uses(db, since: float) -> list[sqlite3.Row]:
    """Emergency logins since *since*, newest first (for the admins' dashboard)."""
    return _conn(db).execute("SELECT id, used_at, used_from FROM emergency_codes WHERE "
                             "used_at > ? ORDER BY used_at DESC", [since]).fetchall()


def _account(conn: sqlite3.Connection, now: float) -> int:
    row = conn.execute("SELECT id FROM users WHERE username = ?", [EMERGENCY_USER]).fetchone()
    if row:
        conn.execute("UPDATE users SET active = 1, role = 'staff' WHERE id = ?", [row["id"]])
        return row["id"]
    # Its password is a random hash nobody knows: it logs in only through a code.
    unusable = generate_password_hash(secrets.token_hex(32), method=HASH_METHOD)
    return conn.execute("INSERT INTO users (username, password_hash, role, created_at) "
                        "VALUES (?, ?, 'staff', ?)", [EMERGENCY_USER, unusable, now]).lastrowid


def log_in(db: sqlite_utils.Database, code: str, *, now: float,
           remote_addr: str | None = None) -> User:
    """The emergency account when *code* is an unused sealed code (now used up); else
    LoginRefused('bad_credentials'). Both outcomes are audited."""
    address = remote_addr or "unknown"
    with write(db) as conn:
        row = conn.execute("SELECT id FROM emergency_codes WHERE code_hash = ? AND used_at IS "
                           "NULL AND revoked_at IS NULL", [_hash(code)]).fetchone()
        if row is None:
            login_throttle.record(conn, address, EMERGENCY_USER, "bad_emergency", now)
            audit.record(conn, EMERGENCY_USER, "emergency_login_failed", remote_addr)
            user_id = None
        else:
            conn.execute("UPDATE emergency_codes SET used_at = ?, used_from = ? WHERE id = ?",
                         [now, address, row["id"]])
            user_id = _account(conn, now)
            conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [now, user_id])
            login_throttle.record(conn, address, EMERGENCY_USER, "emergency", now)
            audit.record(conn, EMERGENCY_USER, "emergency_login", remote_addr, code_id=row["id"],
                         codes_left=conn.execute(
                             "SELECT count(*) FROM emergency_codes WHERE used_at IS NULL "
                             "AND revoked_at IS NULL").fetchone()[0])
    if user_id is None:
        raise LoginRefused("bad_credentials")
    return get_user_by_id(db, user_id)
