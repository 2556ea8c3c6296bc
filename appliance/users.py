"""Web UI accounts: scrypt password hashes, roles, failed-login counting and lockout.

Every change to an account and every login attempt is audited (the MHLW guideline for
medical information systems asks for both). A password is never stored or logged; only
werkzeug's scrypt hash is kept.
"""
from __future__ import annotations

import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .db import now, write

ROLES = ("admin", "staff")
LOCALES = ("ja", "en")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
USERNAME_MAX = 32
HASH_METHOD = "scrypt"
# No 0/O, 1/l/I: generated passwords are read off a screen and typed on a tablet.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 16          # ~93 bits
# Checked against when the user does not exist, so a wrong name costs the same time as a
# wrong password and does not reveal which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method=HASH_METHOD)


class UserError(ValueError):
    """An account change refused; `.field` names the form field when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


class PasswordPolicyError(UserError):
    def __init__(self, message: str):
        super().__init__(message, field="password")


class LoginRefused(Exception):
    """`.reason`: 'bad_credentials', 'locked' or 'inactive'."""

    MESSAGES = {
        "bad_credentials": ("ユーザー名またはパスワードが違います", "wrong user name or password"),
        "locked": ("ログインの失敗が続いたため、しばらくロックされています",
                   "locked after repeated failed logins; try again later"),
        "inactive": ("このアカウントは無効です", "this account is deactivated"),
    }

    def __init__(self, reason: str, *, locked_until: float | None = None):
        self.reason = reason
        self.locked_until = locked_until
        ja, en = self.MESSAGES[reason]
        super().__init__(f"{ja} ({en})")

    def message(self, language: str = "ja") -> str:
        ja, en = self.MESSAGES[self.reason]
        return en if language == "en" else ja


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    locale: str
    active: bool
    failed_logins: int
    locked_until: float | None
    created_at: float
    last_login_at: float | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], username=row["username"], role=row["role"], locale=row["locale"],
                active=bool(row["active"]), failed_logins=row["failed_logins"],
                locked_until=row["locked_until"], created_at=row["created_at"],
                last_login_at=row["last_login_at"])


def _conn(db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))


def check_password(password: str, username: str | None = None) -> str:
    """The password if it meets the policy, else PasswordPolicyError."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください "
                                  f"(at least {MIN_PASSWORD_LENGTH} characters)")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"パスワードが長すぎます (at most {MAX_PASSWORD_LENGTH} "
                                  "characters)")
    if password != password.strip():
        raise PasswordPolicyError("パスワードの前後に空白は使えません "
                                  "(no spaces at the start or end)")
    if username and username.lower() in password.lower():
        raise PasswordPolicyError("パスワードにユーザー名を含めないでください "
                                  "(must not contain the user name)")
    if len(set(password)) < 4:
        raise PasswordPolicyError("同じ文字の繰り返しは使えません (too few different characters)")
    return password


def check_username(username: str) -> str:
    name = unicodedata.normalize("NFKC", username or "").strip()
    if not name:
        raise UserError("ユーザー名を入力してください (the user name is empty)", field="username")
    if len(name) > USERNAME_MAX or any(c.isspace() or not c.isprintable() for c in name):
        raise UserError(f"ユーザー名は空白なしの{USERNAME_MAX}文字までです "
                        f"(up to {USERNAME_MAX} characters, no spaces)", field="username")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    return role


def get_user(db, username: str) -> User | None:
    row = _conn(db).execute("SELECT * FROM users WHERE username = ?",
                            [unicodedata.normalize("NFKC", username or "").strip()]).fetchone()
    return _user(row) if row else None


def get_user_by_id(db, user_id: int) -> User | None:
    row = _conn(db).execute("SELECT * FROM users WHERE id = ?", [user_id]).fetchone()
    return _user(row) if row else None


def list_users(db) -> list[User]:
    return [_user(r) for r in _conn(db).execute("SELECT * FROM users ORDER BY username")]


def create_user(db: sqlite_utils.Database, username: str, role: str,
                password: str | None = None, *, actor: str, locale: str = "ja",
                remote_addr: str | None = None) -> tuple[User, str | None]:
    """Create an account; returns (user, the generated password or None if one was given)."""
    username = check_username(username)
    _check_role(role)
    if locale not in LOCALES:
        raise UserError(f"locale must be one of {', '.join(LOCALES)}", field="locale")
    generated = None
    if password is None:
        password = generated = generate_password()
    check_password(password, username)
    password_hash = generate_password_hash(password, method=HASH_METHOD)
    with write(db) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise UserError(f"ユーザー「{username}」は既にあります (the user exists)",
                            field="username")
        user_id = conn.execute(
            "INSERT INTO users (username, password_hash, role, locale, created_at) "
            "VALUES (?, ?, ?, ?, ?)", [username, password_hash, role, locale, now()]).lastrowid
        audit.record(conn, actor, "user_create", remote_addr, username=username, role=role)
    return get_user_by_id(db, user_id), generated


def _require(conn: sqlite3.Connection, username: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM users WHERE username = ?", [username]).fetchone()
    if row is None:
        raise UserError(f"ユーザー「{username}」はありません (no such user)", field="username")
    return row


def _other_active_admins(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1 "
                        "AND id != ?", [user_id]).fetchone()[0]


def set_password(db: sqlite_utils.Database, username: str, password: str, *, actor: str,
                 remote_addr: str | None = None) -> User:
    """Set a new password; it also lifts a lockout (an admin resetting a locked account)."""
    username = check_username(username)
    check_password(password, username)
    password_hash = generate_password_hash(password, method=HASH_METHOD)
    with write(db) as conn:
        row = _require(conn, username)
        conn.execute("UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL "
                     "WHERE id = ?", [password_hash, row["id"]])
        audit.record(conn, actor, "user_password", remote_addr, username=username)
    return get_user(db, username)


def set_role(db: sqlite_utils.Database, username: str, role: str, *, actor: str,
             remote_addr: str | None = None) -> User:
    _check_role(role)
    with write(db) as conn:
        row = _require(conn, check_username(username))
        if row["role"] == "admin" and role != "admin" and row["active"] \
                and not _other_active_admins(conn, row["id"]):
            raise UserError("最後の管理者の権限は外せません (cannot demote the last admin)",
                            field="role")
        conn.execute("UPDATE users SET role = ? WHERE id = ?", [role, row["id"]])
        audit.record(conn, actor, "user_role", remote_addr, username=row["username"],
                     role=role, old_role=row["role"])
    return get_user_by_id(db, row["id"])


def set_locale(db: sqlite_utils.Database, username: str, locale: str, *, actor: str,
               remote_addr: str | None = None) -> User:
    if locale not in LOCALES:
        raise UserError(f"locale must be one of {', '.join(LOCALES)}", field="locale")
    with write(db) as conn:
        row = _require(conn, check_username(username))
        conn.execute("UPDATE users SET locale = ? WHERE id = ?", [locale, row["id"]])
    return get_user_by_id(db, row["id"])


def deactivate(db: sqlite_utils.Database, username: str, *, actor: str,
               remote_addr: str | None = None) -> User:
    """Disable an account (kept for the audit trail); the last active admin cannot go."""
    with write(db) as conn:
        row = _require(conn, check_username(username))
        if row["role"] == "admin" and row["active"] and not _other_active_admins(conn, row["id"]):
            raise UserError("最後の管理者は無効にできません (cannot deactivate the last admin)",
                            field="active")
        conn.execute("UPDATE users SET active = 0 WHERE id = ?", [row["id"]])
        audit.record(conn, actor, "user_deactivate", remote_addr, username=row["username"])
    return get_user_by_id(db, row["id"])


def activate(db: sqlite_utils.Database, username: str, *, actor: str,
             remote_addr: str | None = None) -> User:
    with write(db) as conn:
        row = _require(conn, check_username(username))
        conn.execute("UPDATE users SET active = 1, failed_logins = 0, locked_until = NULL "
                     "WHERE id = ?", [row["id"]])
        audit.record(conn, actor, "user_activate", remote_addr, username=row["username"])
    return get_user_by_id(db, row["id"])


def unlock(db: sqlite_utils.Database, username: str, *, actor: str,
           remote_addr: str | None = None) -> User:
    with write(db) as conn:
        row = _require(conn, check_username(username))
        conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                     [row["id"]])
        audit.record(conn, actor, "user_unlock", remote_addr, username=row["username"])
    return get_user_by_id(db, row["id"])


def verify_login(db: sqlite_utils.Database, username: str, password: str, *,
                 now: float | None = None, max_failed: int = 5, lockout_minutes: float = 15,
                 remote_addr: str | None = None) -> User:
    """The user when the password is right; else LoginRefused (and the attempt is audited).

    After *max_failed* wrong passwords in a row the account is locked for
    *lockout_minutes*; while locked, even the right password is refused (and not checked).
    The slow hash check runs outside the write lock (the daemon must not wait on it); the
    outcome is then recorded in one write transaction that counts with SQL, so parallel
    guesses cannot race past the limit.
    """
    at = _now() if now is None else now
    name = unicodedata.normalize("NFKC", username or "").strip()
    row = _conn(db).execute("SELECT * FROM users WHERE username = ?", [name]).fetchone()
    if row is None:
        check_password_hash(_DUMMY_HASH, password or "")
        right = False
    elif _locked(row, at):
        right = False
    else:
        right = check_password_hash(row["password_hash"], password or "")
    refused: LoginRefused | None = None
    with write(db) as conn:
        row = conn.execute("SELECT * FROM users WHERE username = ?", [name]).fetchone()
        if row is None:
            audit.record(conn, name[:USERNAME_MAX] or "?", "login_failed", remote_addr,
                         reason="unknown_user")
            refused = LoginRefused("bad_credentials")
        elif _locked(row, at):
            audit.record(conn, name, "login_failed", remote_addr, reason="locked")
            refused = LoginRefused("locked", locked_until=row["locked_until"])
        elif not right:
            refused = _count_failure(conn, row, at, max_failed, lockout_minutes, remote_addr)
        elif not row["active"]:
            audit.record(conn, name, "login_failed", remote_addr, reason="inactive")
            refused = LoginRefused("inactive")
        else:
            conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, "
                         "last_login_at = ? WHERE id = ?", [at, row["id"]])
            audit.record(conn, name, "login", remote_addr)
    # Raised after the commit: the failure count must be kept even though we refuse.
    if refused is not None:
        raise refused
    return get_user(db, name)


def _locked(row: sqlite3.Row, at: float) -> bool:
    return row["locked_until"] is not None and row["locked_until"] > at


def _count_failure(conn: sqlite3.Connection, row: sqlite3.Row, at: float, max_failed: int,
                   lockout_minutes: float, remote_addr: str | None) -> LoginRefused:
    failed = row["failed_logins"] + 1   # read inside this write transaction: no lost count
    audit.record(conn, row["username"], "login_failed", remote_addr, reason="bad_password",
                 failed_logins=failed)
    if failed >= max_failed:
        until = at + lockout_minutes * 60
        # The count starts again after the lockout: the next lock needs max_failed more.
        conn.execute("UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?",
                     [until, row["id"]])
        audit.record(conn, row["username"], "user_locked", remote_addr, until=until,
                     after_failures=failed)
    else:
        conn.execute("UPDATE users SET failed_logins = ? WHERE id = ?", [failed, row["id"]])
    return LoginRefused("bad_credentials")


def _now() -> float:
    return now()
