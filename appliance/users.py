"""Web UI accounts: scrypt password hashes, the password and user-name policies, roles,
session versions, and checking a login.

Every change to an account and every login attempt is audited (the MHLW guideline for
medical information systems asks for both). A password is never stored or logged; only
werkzeug's scrypt hash is kept.

There is no per-account lockout: anyone on the clinic LAN could lock every nurse out with a
few wrong guesses. Guessing is slowed by client address instead (appliance.login_throttle),
and the answer to a wrong password is the same for a name that exists and one that does not.

Each account has a session version that every request's session must carry; changing it
(logout, a new password, another role, deactivation, a second-factor reset) ends every open
session of that account at once, a copied cookie included.
"""
from __future__ import annotations

import re
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, login_throttle
from .db import now, write

ROLES = ("admin", "office", "staff")
ROLE_NAMES = {"admin": ("管理者", "admin"), "office": ("事務", "office"),
              "staff": ("職員", "staff")}
LOCALES = ("ja", "en")
MIN_PASSWORD_LENGTH = 12
# zxcvbn's 0–4 guess score: 3 is "safely unguessable" for an online attack; a password of
# MIN_PASSWORD_LENGTH or more may score 2, but a common one (password1234) scores 1.
STRONG_SCORE = 3
LONG_ENOUGH_SCORE = 2
MAX_PASSWORD_LENGTH = 256
USERNAME_MAX = 32
# Letters and digits of the scripts a Japanese clinic writes names in, and . _ -: no '/'
# (it broke every admin action on 'ward/3'), no look-alikes from other scripts (a Cyrillic
# 'і' in 'admіn'), nothing invisible.
USERNAME = re.compile(r"[A-Za-z0-9\u3041-\u3096\u30a1-\u30fa\u30fc\u4e00-\u9fff\u3005]"
                      r"[A-Za-z0-9._\-\u3041-\u3096\u30a1-\u30fa\u30fc\u4e00-\u9fff\u3005]*")
EMERGENCY_USER = "emergency"   # the break-glass account (appliance.emergency); reserved
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
    """`.reason`: 'bad_credentials', 'inactive', 'throttled' (`.wait` seconds) or
    'bad_code' (the second factor)."""

    MESSAGES = {
        "bad_credentials": ("ユーザー名またはパスワードが違います", "wrong user name or password"),
        "inactive": ("このアカウントは無効です", "this account is deactivated"),
        "throttled": ("この端末からのログインの失敗が続いています。{wait}秒待ってからもう一度"
                      "試してください。急ぎの送信は緊急用コードでログインできます",
                      "too many failed logins from this device: try again in {wait} s, or "
                      "log in with an emergency code to send now"),
        "bad_code": ("確認コードが違います", "wrong verification code"),
        # The storage refuses every write (appliance.read_only_login): what cannot be
        # recorded as used cannot be accepted.
        "read_only_code": ("SDカードが読み取り専用のため、回復コードは使えません。認証アプリの"
                           "6桁のコードを入れてください",
                           "the SD card is read-only, so a recovery code cannot be used: enter "
                           "the 6-digit code of the authenticator app"),
        "read_only_enrol": ("SDカードが読み取り専用のため、2段階認証の設定ができず、ログイン"
                            "できません。設定済みの人がログインしてください",
                            "the SD card is read-only, so two-step verification cannot be set "
                            "up and you cannot log in: ask someone who has set it up"),
        "read_only_emergency": ("SDカードが読み取り専用のため、緊急用コードは使えません（使った"
                                "ことを記録できません）。自分のユーザー名とパスワードでログイン"
                                "してください",
                                "the SD card is read-only, so an emergency code cannot be used "
                                "(its use cannot be recorded): log in with your own user name "
                                "and password"),
    }

    def __init__(self, reason: str, *, wait: float = 0):
        self.reason = reason
        self.wait = wait
        super().__init__(f"{self.message('ja')} ({self.message('en')})")

    def message(self, language: str = "ja") -> str:
        ja, en = self.MESSAGES[self.reason]
        return (en if language == "en" else ja).format(wait=max(1, round(self.wait)))


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    locale: str
    active: bool
    created_at: float
    last_login_at: float | None
    session_version: int
    two_factor: bool            # a second factor is set up

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def user_of(row: sqlite3.Row) -> User:
    return User(id=row["id"], username=row["username"], role=row["role"], locale=row["locale"],
                active=bool(row["active"]), created_at=row["created_at"],
                last_login_at=row["last_login_at"], session_version=row["session_version"],
                two_factor=row["totp_secret"] is not None)


def _conn(db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))


def password_score(password: str, username: str | None = None) -> int:
    """zxcvbn's 0–4 score (the first 100 characters: its time grows with the length)."""
    from zxcvbn import zxcvbn
    hints = ["tsunagu", "つなぐ"] + ([username] if username else [])
    return zxcvbn(password[:100], user_inputs=hints)["score"]


def check_password(password: str, username: str | None = None) -> str:
    """The password if it meets the policy, else PasswordPolicyError.

    Policy: no user name inside; then either a zxcvbn score of 3 or more, or at least
    MIN_PASSWORD_LENGTH characters with a score of 2 (a long but common password such as
    "password1234" is still refused).
    """
    if not isinstance(password, str) or not password:
        raise PasswordPolicyError("パスワードを入力してください (the password is empty)")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"パスワードが長すぎます (at most {MAX_PASSWORD_LENGTH} "
                                  "characters)")
    if password != password.strip():
        raise PasswordPolicyError("パスワードの前後に空白は使えません "
                                  "(no spaces at the start or end)")
    if username and username.lower() in password.lower():
        raise PasswordPolicyError("パスワードにユーザー名を含めないでください "
                                  "(must not contain the user name)")
    score = password_score(password, username)
    if score >= STRONG_SCORE or (len(password) >= MIN_PASSWORD_LENGTH
                                 and score >= LONG_ENOUGH_SCORE):
        return password
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"パスワードが短く推測されやすいです。{MIN_PASSWORD_LENGTH}文字以上にしてください "
            f"(too short and easy to guess: use at least {MIN_PASSWORD_LENGTH} characters)")
    raise PasswordPolicyError("よく使われる推測されやすいパスワードです。単語を組み合わせるなど"
                              "してください (too common and easy to guess; try a few "
                              "unrelated words)")


def clean_username(username: str | None) -> str:
    """The name as stored and looked up: NFKC (full-width letters typed by an IME) and trimmed."""
    return unicodedata.normalize("NFKC", username or "").strip()


def check_username(username: str) -> str:
    name = clean_username(username)
    if not name:
        raise UserError("ユーザー名を入力してください (the user name is empty)", field="username")
    if len(name) > USERNAME_MAX or not USERNAME.fullmatch(name):
        raise UserError(f"ユーザー名に使えるのは英数字・ひらがな・カタカナ・漢字と . _ - で、"
                        f"{USERNAME_MAX}文字までです (up to {USERNAME_MAX} letters, digits, "
                        "'.', '_' or '-', starting with a letter or digit)", field="username")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    return role


def get_user(db, username: str) -> User | None:
    row = _conn(db).execute("SELECT * FROM users WHERE username = ?",
                            [clean_username(username)]).fetchone()
    return user_of(row) if row else None


def get_user_by_id(db, user_id: int) -> User | None:
    row = _conn(db).execute("SELECT * FROM users WHERE id = ?", [user_id]).fetchone()
    return user_of(row) if row else None


def list_users(db) -> list[User]:
    return [user_of(r) for r in _conn(db).execute(
        "SELECT * FROM users WHERE username != ? ORDER BY username", [EMERGENCY_USER])]


def create_user(db: sqlite_utils.Database, username: str, role: str,
                password: str | None = None, *, actor: str, locale: str = "ja",
                remote_addr: str | None = None) -> tuple[User, str | None]:
    """Create an account; returns (user, the generated password or None if one was given)."""
    username = check_username(username)
    if username.lower() == EMERGENCY_USER:
        raise UserError(f"「{EMERGENCY_USER}」は緊急ログイン用の名前です (reserved for the "
                        "emergency login)", field="username")
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
        at = now()
        user_id = conn.execute(
            "INSERT INTO users (username, password_hash, role, locale, created_at, "
            "password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
            [username, password_hash, role, locale, at, at]).lastrowid
        audit.record(conn, actor, "user_create", remote_addr, user_id=user_id,
                     username=username, role=role)
    return get_user_by_id(db, user_id), generated


def require(conn: sqlite3.Connection, who: int | str) -> sqlite3.Row:
    """The users row for an id (int) or a user name (str), or UserError."""
    if isinstance(who, int):
        row = conn.execute("SELECT * FROM users WHERE id = ?", [who]).fetchone()
    else:
        row = conn.execute("SELECT * FROM users WHERE username = ?",
                           [clean_username(who)]).fetchone()
    if row is None:
        raise UserError(f"ユーザー「{who}」はありません (no such user)", field="username")
    return row


def _other_active_admins(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1 "
                        "AND id != ?", [user_id]).fetchone()[0]


def bump_session_version(conn: sqlite3.Connection, user_id: int) -> None:
    """End every open session of the account (call inside the change's transaction)."""
    conn.execute("UPDATE users SET session_version = session_version + 1 WHERE id = ?",
                 [user_id])


def set_password(db: sqlite_utils.Database, who: int | str, password: str, *, actor: str,
                 remote_addr: str | None = None) -> User:
    """Set a new password (an admin's reset or the CLI); every open session ends."""
    with write(db) as conn:
        row = require(conn, who)
        check_password(password, row["username"])
        conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                     [generate_password_hash(password, method=HASH_METHOD), now(), row["id"]])
        bump_session_version(conn, row["id"])
        audit.record(conn, actor, "user_password", remote_addr, user_id=row["id"],
                     username=row["username"])
    return get_user_by_id(db, row["id"])


def change_own_password(db: sqlite_utils.Database, user_id: int, current: str, new: str, *,
                        remote_addr: str | None = None) -> User:
    """A person changing their own password: the current one first. Other sessions end."""
    row = require(_conn(db), user_id)
    if not check_password_hash(row["password_hash"], current or ""):
        raise UserError("今のパスワードが違います (the current password is wrong)",
                        field="current")
    if new == current:
        raise PasswordPolicyError("今と同じパスワードです (the new password is the same as "
                                  "the current one)")
    with write(db) as conn:
        check_password(new, row["username"])
        conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                     [generate_password_hash(new, method=HASH_METHOD), now(), user_id])
        bump_session_version(conn, user_id)
        audit.record(conn, row["username"], "password_change", remote_addr, user_id=user_id)
    return get_user_by_id(db, user_id)


def set_role(db: sqlite_utils.Database, who: int | str, role: str, *, actor: str,
             remote_addr: str | None = None) -> User:
    _check_role(role)
    with write(db) as conn:
        row = require(conn, who)
        if row["role"] == "admin" and role != "admin" and row["active"] \
                and not _other_active_admins(conn, row["id"]):
            raise UserError("最後の管理者の権限は外せません (cannot demote the last admin)",
                            field="role")
        if row["role"] == role:
            return get_user_by_id(db, row["id"])
        conn.execute("UPDATE users SET role = ? WHERE id = ?", [role, row["id"]])
        bump_session_version(conn, row["id"])
        audit.record(conn, actor, "user_role", remote_addr, user_id=row["id"],
                     username=row["username"], role=role, old_role=row["role"])
    return get_user_by_id(db, row["id"])


def set_locale(db: sqlite_utils.Database, who: int | str, locale: str, *, actor: str,
               remote_addr: str | None = None) -> User:
    if locale not in LOCALES:
        raise UserError(f"locale must be one of {', '.join(LOCALES)}", field="locale")
    with write(db) as conn:
        row = require(conn, who)
        conn.execute("UPDATE users SET locale = ? WHERE id = ?", [locale, row["id"]])
    return get_user_by_id(db, row["id"])


def deactivate(db: sqlite_utils.Database, who: int | str, *, actor: str,
               remote_addr: str | None = None) -> User:
    """Disable an account (kept for the audit trail); the last active admin cannot go."""
    with write(db) as conn:
        row = require(conn, who)
        if row["role"] == "admin" and row["active"] and not _other_active_admins(conn, row["id"]):
            raise UserError("最後の管理者は無効にできません (cannot deactivate the last admin)",
                            field="active")
        conn.execute("UPDATE users SET active = 0 WHERE id = ?", [row["id"]])
        bump_session_version(conn, row["id"])
        audit.record(conn, actor, "user_deactivate", remote_addr, user_id=row["id"],
                     username=row["username"])
    return get_user_by_id(db, row["id"])


def activate(db: sqlite_utils.Database, who: int | str, *, actor: str,
             remote_addr: str | None = None) -> User:
    with write(db) as conn:
        row = require(conn, who)
        conn.execute("UPDATE users SET active = 1 WHERE id = ?", [row["id"]])
        audit.record(conn, actor, "user_activate", remote_addr, user_id=row["id"],
                     username=row["username"])
    return get_user_by_id(db, row["id"])


def end_sessions(db: sqlite_utils.Database, user_id: int, *, actor: str, action: str = "logout",
                 remote_addr: str | None = None) -> None:
    """Logout: this account's sessions end everywhere (a copied cookie no longer opens)."""
    with write(db) as conn:
        bump_session_version(conn, user_id)
        audit.record(conn, actor, action, remote_addr, user_id=user_id)


def verify_login(db: sqlite_utils.Database, username: str, password: str, *,
                 now: float | None = None, throttle: login_throttle.Policy | None = None,
                 remote_addr: str | None = None) -> User:
    """The user when the password is right; else LoginRefused (and the attempt is recorded).

    The throttle by client address is asked first: a throttled address is refused before
    the password is checked, whatever the name. A wrong password and an unknown name give
    the same answer in the same time. A right password does not log in yet: the caller
    asks for the second factor when the account has one, then calls `logged_in`.
    """
    at = _now() if now is None else now
    address = remote_addr or "unknown"
    name = clean_username(username)[:USERNAME_MAX * 4]
    policy = throttle or login_throttle.Policy()
    # The attempt is written as a failure before the (slow) password check, in the same
    # transaction that asks the throttle: parallel guesses cannot all slip in before the
    # first one is counted. A right password turns it into 'password_ok' afterwards.
    with write(db) as conn:
        wait = login_throttle.wait_for(conn, policy, address, at)
        if wait > 0:
            login_throttle.record(conn, address, name, "throttled", at)
            audit.record(conn, name or "?", "login_failed", remote_addr, reason="throttled",
                         wait=round(wait))
        else:
            attempt = login_throttle.record(conn, address, name, "bad_credentials", at)
    if wait > 0:
        raise LoginRefused("throttled", wait=wait)
    row, reason = password_matches(_conn(db), name, password)
    with write(db) as conn:
        if reason is None:
            login_throttle.settle(conn, attempt, "password_ok")
        else:
            audit.record(conn, name or "?", "login_failed", remote_addr, reason=reason)
    if reason is None:
        return user_of(row)
    raise refused_for(reason)


def password_matches(conn: sqlite3.Connection, name: str, password: str | None
                     ) -> tuple[sqlite3.Row | None, str | None]:
    """The account *name* (cleaned) and None when *password* is its own and it is active;
    else the reason it is not ('unknown_user', 'bad_password', 'inactive'). Only reads; an
    unknown name costs the same time as a known one."""
    row = conn.execute("SELECT * FROM users WHERE username = ? AND username != ?",
                       [name, EMERGENCY_USER]).fetchone()
    if row is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None, "unknown_user"
    if not check_password_hash(row["password_hash"], password or ""):
        return row, "bad_password"
    if not row["active"]:
        return row, "inactive"
    return row, None


def refused_for(reason: str) -> LoginRefused:
    """What the person is told: the same for a wrong password and an unknown name;
    'inactive' only to the one who knows the password."""
    return LoginRefused("inactive" if reason == "inactive" else "bad_credentials")


def logged_in(db: sqlite_utils.Database, user_id: int, *, method: str, now: float,
              remote_addr: str | None = None) -> User:
    """Record a completed login (password, and the second factor when there is one)."""
    with write(db) as conn:
        row = require(conn, user_id)
        conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [now, user_id])
        login_throttle.record(conn, remote_addr or "unknown", row["username"], "ok", now)
        audit.record(conn, row["username"], "login", remote_addr, method=method)
    return get_user_by_id(db, user_id)


def _now() -> float:
    return now()
