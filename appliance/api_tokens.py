"""Tokens for the API (/api/v1): made by an admin, shown once, stored hashed, revocable,
each with scopes and a rate limit, each named in the audit log as 'api:<name>'.

A token is 32 random bytes (urlsafe base64) after the prefix "tsu_". It has far more entropy
than a password, so a plain SHA-256 is the right hash to keep: it cannot be guessed back,
and a request is matched with one indexed lookup (a slow password hash would make every API
call cost a second). The token itself is never stored or logged.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass

from . import audit

SCOPES = ("send", "read", "contacts", "reminders")
SCOPE_HELP = {
    "send": "POST /broadcasts and their cancel",
    "read": "GET broadcasts, recipients, inbox and status",
    "contacts": "GET/PUT /contacts/{patient ID}",
    "reminders": "GET/PUT/DELETE /reminders/{appointment ID}",
}
PREFIX = "tsu_"
NAME_MAX = 50
SHOWN_PREFIX = 12          # characters of the token kept to recognise it on the admin page


class TokenError(ValueError):
    """A token cannot be made or changed as asked; `field` names the form field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    rate_per_minute: int
    created_by: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    revoked_by: str | None

    @property
    def actor(self) -> str:
        """Who the audit log names for what this token does."""
        return f"api:{self.name}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(id=row["id"], name=row["name"], prefix=row["prefix"],
                    scopes=tuple(s for s in row["scopes"].split(",") if s),
                    rate_per_minute=row["rate_per_minute"], created_by=row["created_by"],
                    created_at=row["created_at"], last_used_at=row["last_used_at"],
                    revoked_at=row["revoked_at"], revoked_by=row["revoked_by"])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(scopes) -> tuple[str, ...]:
    """'send,read' or a list → the scopes in SCOPES order; TokenError names a wrong one."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes or ())
    wanted = {s.strip().lower() for s in items if s and s.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope {', '.join(unknown)} (scopes: {', '.join(SCOPES)}) "
                         "/ 権限の名前が違います", field="scopes")
    if not wanted:
        raise TokenError(f"choose at least one scope ({', '.join(SCOPES)}) "
                         "/ 権限を1つ以上選んでください", field="scopes")
    return tuple(s for s in SCOPES if s in wanted)


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFKC", name or "").strip()
    if not name:
        raise TokenError("the token needs a name (the system that uses it) "
                         "/ 名前を入力してください", field="name")
    if len(name) > NAME_MAX:
        raise TokenError(f"a token's name is at most {NAME_MAX} characters "
                         f"/ 名前は{NAME_MAX}文字までです", field="name")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise TokenError("the name contains a control character / 名前に制御文字があります",
                         field="name")
    return name


def create(conn: sqlite3.Connection, name: str, scopes, *, actor: str, now: float,
           rate_per_minute: int, remote_addr: str | None = None) -> tuple[ApiToken, str]:
    """Make a token (inside a write transaction); returns it and the token text, which is
    shown once and never again."""
    name = check_name(name)
    chosen = parse_scopes(scopes)
    if not isinstance(rate_per_minute, int) or not 1 <= rate_per_minute <= 100_000:
        raise TokenError("the rate limit is 1 to 100000 requests a minute "
                         "/ 1分あたりの上限は1〜100000です", field="rate_per_minute")
    if conn.execute("SELECT 1 FROM api_tokens WHERE name = ?", [name]).fetchone():
        raise TokenError(f"a token named 「{name}」 exists; revoke it or choose another name "
                         "/ 同じ名前のトークンがあります", field="name")
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        "INSERT INTO api_tokens (name, token_hash, prefix, scopes, rate_per_minute, created_by, "
        "created_at) VALUES (?,?,?,?,?,?,?)",
        [name, digest(secret), secret[:SHOWN_PREFIX], ",".join(chosen), rate_per_minute, actor,
         now]).lastrowid
    audit.record(conn, actor, "api_token_create", remote_addr, token_id=token_id, name=name,
                 scopes=list(chosen), rate_per_minute=rate_per_minute)
    return get(conn, token_id), secret


def get(conn: sqlite3.Connection, token_id: int) -> ApiToken | None:
    row = conn.execute("SELECT * FROM api_tokens WHERE id = ?", [token_id]).fetchone()
    return _token(row) if row else None


def by_name(conn: sqlite3.Connection, name: str) -> ApiToken | None:
    row = conn.execute("SELECT * FROM api_tokens WHERE name = ?",
                       [unicodedata.normalize("NFKC", name).strip()]).fetchone()
    return _token(row) if row else None


def listing(conn: sqlite3.Connection) -> list[ApiToken]:
    """Every token, those in use first, then by name."""
    return [_token(r) for r in conn.execute(
        "SELECT * FROM api_tokens ORDER BY revoked_at IS NOT NULL, name")]


def authenticate(conn: sqlite3.Connection, presented: str | None) -> ApiToken | None:
    """The active token for the text a request presented, or None."""
    if not presented or not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    wanted = digest(presented)
    row = conn.execute("SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                       [wanted]).fetchone()
    # The lookup is by a hash of the token, so timing says nothing about the token itself;
    # compare_digest only makes the equality explicit.
    if row is None or not hmac.compare_digest(row["token_hash"], wanted):
        return None
    return _token(row)


def revoke(conn: sqlite3.Connection, token_id: int, *, actor: str, now: float,
           remote_addr: str | None = None) -> ApiToken:
    """Revoke a token (inside a write transaction): it stops working at once; its webhook
    stops with it. The row stays, so the audit log's 'api:<name>' keeps its meaning."""
    token = get(conn, token_id)
    if token is None:
        raise TokenError(f"no API token with id {token_id}", field="id")
    if not token.active:
        raise TokenError(f"the token 「{token.name}」 is already revoked / 既に無効です",
                         field="id")
    conn.execute("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                 [now, actor, token_id])
    conn.execute("UPDATE api_webhooks SET enabled = 0, updated_at = ? WHERE token_id = ?",
                 [now, token_id])
    audit.record(conn, actor, "api_token_revoke", remote_addr, token_id=token_id,
                 name=token.name)
    return get(conn, token_id)


def touch(conn: sqlite3.Connection, token_id: int, now: float) -> None:
    conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [now, token_id])


class RateLimiter:
    """Requests per minute per token, as a token bucket: a burst of a minute's worth, then
    one request every 60/limit seconds. Kept in the web process's memory: a restart forgives,
    which is what a limit against runaway scripts needs (it is not a quota)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}   # token id → (tokens, at)

    def take(self, token_id: int, limit: int, now: float) -> tuple[bool, int, float]:
        """(allowed, requests left, seconds until the next one is allowed)."""
        with self._lock:
            tokens, at = self._buckets.get(token_id, (float(limit), now))
            tokens = min(float(limit), tokens + max(0.0, now - at) * limit / 60.0)
            if tokens >= 1.0:
                tokens -= 1.0
                self._buckets[token_id] = (tokens, now)
                return True, int(tokens), 0.0
            self._buckets[token_id] = (tokens, now)
            return False, 0, (1.0 - tokens) * 60.0 / limit
