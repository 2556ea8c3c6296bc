"""The second factor: TOTP codes from an authenticator app (RFC 6238, pyotp) and one-time
recovery codes.

Enrolment shows a QR code (segno, drawn on the appliance: no internet) and the same key to
type by hand; the key is kept server-side as *pending* until a code from the app confirms it,
so a half-done enrolment never locks anyone out and the key never travels in a cookie. Then
10 recovery codes are shown once (only their hashes are kept). A code is accepted once:
the last 30-second step used is remembered, so a code seen over a shoulder cannot be replayed.

TOTP needs the right time: `tsunagu check` warns when the clock is not synchronised.
"""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import unicodedata

import pyotp
import sqlite_utils

from . import audit, login_throttle
from .db import write
from .users import LoginRefused, UserError, bump_session_version, require

ISSUER = "Tsunagu"
STEP = 30
RECOVERY_CODES = 10
RECOVERY_CODE_LENGTH = 10   # letters and digits, shown as two groups of five
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"   # no 0/o, 1/l: read off paper
MODES = ("admin", "all", "off")


def required(mode: str, role: str) -> bool:
    """Whether an account of *role* must have a second factor ([web] two_factor)."""
    return mode == "all" or (mode == "admin" and role == "admin")


def _conn(db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def clean_code(code: str | None) -> str:
    # An IME may type full-width digits; people copy codes with spaces or hyphens.
    text = unicodedata.normalize("NFKC", code or "").strip().lower()
    return "".join(c for c in text if c.isalnum())


def start_enrolment(db: sqlite_utils.Database, user_id: int) -> str:
    """A new key for the account, kept pending until `confirm_enrolment`; returns it."""
    secret = pyotp.random_base32()
    with write(db) as conn:
        require(conn, user_id)
        conn.execute("UPDATE users SET totp_pending = ? WHERE id = ?", [secret, user_id])
    return secret


def pending_key(db, user_id: int) -> str | None:
    return require(_conn(db), user_id)["totp_pending"]


def provisioning_uri(secret: str, username: str, clinic: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=f"{username} ({clinic})",
                                               issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI for an <img> (the CSP allows data: images only)."""
    import segno
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def display_key(secret: str) -> str:
    """The key in groups of four, as people type it into an app."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: float) -> int | None:
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = int(now // STEP)
    for candidate in (step, step - 1, step + 1):    # one step of clock drift either way
        if secrets.compare_digest(totp.at(candidate * STEP), code):
            return candidate
    return None


def confirm_enrolment(db: sqlite_utils.Database, user_id: int, code: str, *, now: float,
                      actor: str, remote_addr: str | None = None) -> list[str]:
    """Make the pending key the account's second factor when *code* comes from it; returns
    the new recovery codes (shown once). UserError (field 'code') otherwise."""
    with write(db) as conn:
        row = require(conn, user_id)
        secret = row["totp_pending"]
        if not secret:
            raise UserError("最初からやり直してください (start the set-up again)", field="code")
        step = matching_step(secret, clean_code(code), now)
        if step is None:
            raise UserError("確認コードが違います。アプリに表示中の6桁を入力してください "
                            "(wrong code: type the 6 digits the app shows now)", field="code")
        conn.execute("UPDATE users SET totp_secret = ?, totp_pending = NULL, "
                     "totp_enabled_at = ?, totp_last_step = ? WHERE id = ?",
                     [secret, now, step, user_id])
        codes = _replace_recovery_codes(conn, user_id, now)
        audit.record(conn, actor, "two_factor_enable", remote_addr, user_id=user_id,
                     username=row["username"])
    return codes


def _hash(code: str) -> str:
    # Recovery codes are random (~50 bits) and guesses are throttled: a plain hash suffices.
    return hashlib.sha256(clean_code(code).encode()).hexdigest()


def _replace_recovery_codes(conn: sqlite3.Connection, user_id: int, now: float) -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])
    conn.executemany("INSERT INTO recovery_codes (user_id, code_hash, created_at) "
                     "VALUES (?, ?, ?)", [(user_id, _hash(c), now) for c in codes])
    return codes


def new_recovery_codes(db: sqlite_utils.Database, user_id: int, *, now: float, actor: str,
                       remote_addr: str | None = None) -> list[str]:
    """Ten new recovery codes; the old ones stop working."""
    with write(db) as conn:
        row = require(conn, user_id)
        if not row["totp_secret"]:
            raise UserError("2段階認証が設定されていません (no second factor)", field="code")
        codes = _replace_recovery_codes(conn, user_id, now)
        audit.record(conn, actor, "recovery_codes_new", remote_addr, user_id=user_id)
    return codes


def recovery_codes_left(db, user_id: int) -> int:
    return _conn(db).execute("SELECT count(*) FROM recovery_codes WHERE user_id = ? AND "
                             "used_at IS NULL", [user_id]).fetchone()[0]


def verify(db: sqlite_utils.Database, user_id: int, code: str, *, now: float,
           remote_addr: str | None = None, throttle: login_throttle.Policy | None = None
           ) -> str:
    """'totp' or 'recovery_code' when *code* is right (each is accepted once); else
    LoginRefused('bad_code'), counted by the throttle like a wrong password."""
    address = remote_addr or "unknown"
    policy = throttle or login_throttle.Policy()
    cleaned = clean_code(code)
    with write(db) as conn:
        row = require(conn, user_id)
        wait = login_throttle.wait_for(conn, policy, address, now)
        if wait > 0:
            login_throttle.record(conn, address, row["username"], "throttled", now)
            refused = LoginRefused("throttled", wait=wait)
        else:
            method = _accept(conn, row, cleaned, now)
            if method is not None:
                return method
            login_throttle.record(conn, address, row["username"], "bad_code", now)
            audit.record(conn, row["username"], "login_failed", remote_addr, reason="bad_code")
            refused = LoginRefused("bad_code")
    raise refused


def _accept(conn: sqlite3.Connection, row: sqlite3.Row, code: str, now: float) -> str | None:
    secret = row["totp_secret"]
    if not secret:
        return None
    step = matching_step(secret, code, now)
    if step is not None and step > (row["totp_last_step"] or -1):
        conn.execute("UPDATE users SET totp_last_step = ? WHERE id = ?", [step, row["id"]])
        return "totp"
    if len(code) == RECOVERY_CODE_LENGTH:
        used = conn.execute("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND "
                            "code_hash = ? AND used_at IS NULL",
                            [now, row["id"], _hash(code)]).rowcount
        if used:
            audit.record(conn, row["username"], "recovery_code_used", None,
                         left=conn.execute("SELECT count(*) FROM recovery_codes WHERE "
                                           "user_id = ? AND used_at IS NULL",
                                           [row["id"]]).fetchone()[0])
            return "recovery_code"
    return None


def disable(db: sqlite_utils.Database, user_id: int, *, actor: str, action: str,
            remote_addr: str | None = None) -> None:
    """Remove the second factor (*action*: 'two_factor_disable' by its owner where it is
    optional, 'two_factor_reset' by an admin for a lost phone). Every session ends."""
    with write(db) as conn:
        row = require(conn, user_id)
        conn.execute("UPDATE users SET totp_secret = NULL, totp_pending = NULL, "
                     "totp_enabled_at = NULL, totp_last_step = NULL WHERE id = ?", [user_id])
        conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])
        bump_session_version(conn, user_id)
        audit.record(conn, actor, action, remote_addr, user_id=user_id,
                     username=row["username"])
