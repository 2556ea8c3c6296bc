"""Webhooks: what happened, POSTed to the clinic's systems, signed, and never lost.

Each API token may have one webhook: a URL, a secret and the events it wants (EVENTS).

- **Capture.** Triggers in the schema (migration 0006) write an api_events row in the same
  transaction as the change itself — a recipient sent, delivered or failed, a reply stored,
  a modem's state changed, a broadcast finished — whichever code made it, and only while an
  enabled webhook wants that event. Nothing in the send path calls this module.
- **Fan-out.** The daemon renders each new event's payload once (`fan_out`) and queues one
  api_deliveries row per webhook that wants it: the durable outbox. A re-send sends the same
  body again.
- **Delivery.** `Deliverer.run()` is a job of the daemon's main thread (under its job guard).
  It hands each webhook's next due deliveries, in order, to a small thread pool that does the
  HTTP, and records the answers at its next run: the main thread never waits on a receiver.
  2xx is delivered; 4xx (except 408 and 429) is refused by the receiver: failed at once,
  re-sendable; anything else (no answer, 5xx, 408, 429) holds that webhook's queue and is
  tried again after a doubling back-off (webhook_retry_first, doubling to webhook_retry_max)
  until webhook_give_up_hours after the event, then failed. Failed deliveries stay on the
  admin page and can be re-sent.
- **At least once.** A kill -9 between a receiver's 2xx and its record means the delivery
  goes again after the restart: receivers drop repeats by the Tsunagu-Event-Id header.

Signature: `Tsunagu-Signature: sha256=<hex>` is HMAC-SHA256 with the webhook's secret over
the bytes `<Tsunagu-Timestamp>.<body>`. Receivers check it and refuse a timestamp more than
five minutes away from their clock (a replayed old request).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

import sqlite_utils

from . import audit, broadcasts, timestamps
from .config import Config
from .db import write

log = logging.getLogger(__name__)

EVENTS = ("message.sent", "message.delivered", "message.failed", "reply.received",
          "modem.state", "broadcast.finished")
BATCH = 20                   # deliveries handed to the pool at once per webhook, in order
POOL_THREADS = 4
KEEP_DELIVERED_DAYS = 30     # delivered rows older than this are pruned…
PRUNE_EVERY = 3600.0         # …looked for once an hour
URL_MAX = 500
ERROR_MAX = 300
RETRIED_4XX = (408, 425, 429)   # "try later" answers, not refusals


class WebhookError(ValueError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- configuration ----------------------------------------------------------------------

def check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("the webhook URL must be http:// or https:// with a host, e.g. "
                           "http://192.0.2.10:8000/tsunagu / URLが正しくありません", field="url")
    if len(url) > URL_MAX or any(c.isspace() for c in url):
        raise WebhookError("the webhook URL is too long or contains spaces / URLが正しくありません",
                           field="url")
    return url


def parse_events(events) -> tuple[str, ...]:
    items = events.split(",") if isinstance(events, str) else list(events or ())
    wanted = {e.strip() for e in items if e and e.strip()}
    unknown = sorted(wanted - set(EVENTS))
    if unknown:
        raise WebhookError(f"unknown event {', '.join(unknown)} (events: {', '.join(EVENTS)}) "
                           "/ イベント名が違います", field="events")
    if not wanted:
        raise WebhookError("choose at least one event / イベントを1つ以上選んでください",
                           field="events")
    return tuple(e for e in EVENTS if e in wanted)


@dataclass(frozen=True)
class Webhook:
    id: int
    token_id: int
    url: str
    events: tuple[str, ...]
    enabled: bool
    failures: int
    retry_at: float | None
    last_error: str | None
    last_error_at: float | None
    last_success_at: float | None


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(id=row["id"], token_id=row["token_id"], url=row["url"],
                   events=tuple(e for e in row["events"].split(",") if e),
                   enabled=bool(row["enabled"]), failures=row["failures"],
                   retry_at=row["retry_at"], last_error=row["last_error"],
                   last_error_at=row["last_error_at"], last_success_at=row["last_success_at"])


def for_token(conn: sqlite3.Connection, token_id: int) -> Webhook | None:
    row = conn.execute("SELECT * FROM api_webhooks WHERE token_id = ?", [token_id]).fetchone()
    return _webhook(row) if row else None


def set_webhook(conn: sqlite3.Connection, token_id: int, *, url: str, events, actor: str,
                now: float, new_secret: bool = False,
                remote_addr: str | None = None) -> tuple[Webhook, str | None]:
    """Create or change a token's webhook (inside a write transaction). Returns it and the
    secret when one was made (a new webhook, or new_secret): shown once, like the token."""
    url, chosen = check_url(url), parse_events(events)
    token = conn.execute("SELECT name, revoked_at FROM api_tokens WHERE id = ?",
                         [token_id]).fetchone()
    if token is None or token["revoked_at"] is not None:
        raise WebhookError("the token is revoked or does not exist", field="token")
    stored = "," + ",".join(chosen) + ","
    current = for_token(conn, token_id)
    secret = None
    if current is None:
        secret = "whsec_" + secrets.token_urlsafe(32)
        conn.execute("INSERT INTO api_webhooks (token_id, url, secret, events, created_at, "
                     "updated_at) VALUES (?,?,?,?,?,?)", [token_id, url, secret, stored, now, now])
    else:
        if new_secret:
            secret = "whsec_" + secrets.token_urlsafe(32)
            conn.execute("UPDATE api_webhooks SET secret = ? WHERE id = ?", [secret, current.id])
        conn.execute("UPDATE api_webhooks SET url = ?, events = ?, enabled = 1, updated_at = ? "
                     "WHERE id = ?", [url, stored, now, current.id])
    audit.record(conn, actor, "api_webhook_set", remote_addr, token_id=token_id,
                 token=token["name"], url=url, events=list(chosen),
                 new_secret=secret is not None)
    return for_token(conn, token_id), secret


def remove_webhook(conn: sqlite3.Connection, token_id: int, *, actor: str,
                   remote_addr: str | None = None) -> None:
    """Stop a token's webhook; its pending deliveries go with it (the admin removed it)."""
    current = for_token(conn, token_id)
    if current is None:
        raise WebhookError("this token has no webhook", field="token")
    conn.execute("DELETE FROM api_deliveries WHERE webhook_id = ?", [current.id])
    conn.execute("DELETE FROM api_webhooks WHERE id = ?", [current.id])
    audit.record(conn, actor, "api_webhook_remove", remote_addr, token_id=token_id,
                 url=current.url)


# -- signing ------------------------------------------------------------------------------

def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Tsunagu-Signature header's value."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(*, event_type: str, event_id: int, delivery_id: int, secret: str, timestamp: int,
            body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Tsunagu-Webhook/1",
            "Tsunagu-Event": event_type,
            "Tsunagu-Event-Id": str(event_id),
            "Tsunagu-Delivery": str(delivery_id),
            "Tsunagu-Timestamp": str(timestamp),
            "Tsunagu-Signature": sign(secret, timestamp, body)}


# -- payloads -------------------------------------------------------------------------------

def render(conn: sqlite3.Connection, config: Config, event: sqlite3.Row) -> dict:
    """An event's payload: {id, type, occurred_at, data}."""
    snapshot = json.loads(event["data"]) if event["data"] else {}
    kind = event["type"]
    if kind.startswith("message."):
        data = _message(conn, int(event["subject"]), snapshot)
    elif kind == "reply.received":
        data = _reply(conn, int(event["subject"]))
    elif kind == "broadcast.finished":
        data = _broadcast(conn, int(event["subject"]), snapshot)
    else:
        data = {"modem": event["subject"], "ready": bool(snapshot.get("ready")),
                "reason": snapshot.get("reason"), "detail": snapshot.get("detail"),
                "operator": snapshot.get("operator"),
                "signal_bars": snapshot.get("signal_bars")}
    return {"id": event["id"], "type": kind,
            "occurred_at": timestamps.to_text(event["at"], config.zone), "data": data}


def _reminder(conn: sqlite3.Connection, broadcast_id: int | None) -> dict | None:
    if broadcast_id is None:
        return None
    row = conn.execute("SELECT id, external_id FROM reminders WHERE broadcast_id = ?",
                       [broadcast_id]).fetchone()
    return {"id": row["id"], "external_id": row["external_id"]} if row else None


def _message(conn: sqlite3.Connection, recipient_id: int, snapshot: dict) -> dict:
    row = conn.execute("SELECT r.*, c.patient_id FROM recipients r LEFT JOIN contacts c ON "
                       "c.id = r.contact_id WHERE r.id = ?", [recipient_id]).fetchone()
    if row is None:
        return {"recipient_id": recipient_id}
    return {"recipient_id": row["id"], "broadcast_id": row["broadcast_id"],
            "contact_id": row["contact_id"], "patient_id": row["patient_id"],
            "phone": row["phone"], "parts": row["parts_count"],
            "reason": snapshot.get("reason"), "modem": snapshot.get("modem"),
            "reminder": _reminder(conn, row["broadcast_id"])}


def _reply(conn: sqlite3.Connection, inbound_id: int) -> dict:
    row = conn.execute(
        "SELECT i.*, r.contact_id, c.patient_id, b.choices FROM inbound_messages i "
        "LEFT JOIN recipients r ON r.id = i.recipient_id LEFT JOIN contacts c ON "
        "c.id = r.contact_id LEFT JOIN broadcasts b ON b.id = i.broadcast_id WHERE i.id = ?",
        [inbound_id]).fetchone()
    if row is None:
        return {"inbound_id": inbound_id}
    choices = json.loads(row["choices"]) if row["choices"] else []
    choice = row["choice"]
    return {"inbound_id": row["id"], "from": row["number"], "text": row["text"],
            "recipient_id": row["recipient_id"], "broadcast_id": row["broadcast_id"],
            "contact_id": row["contact_id"], "patient_id": row["patient_id"],
            "choice": choice,
            "choice_text": choices[choice - 1] if choice and choice <= len(choices) else None,
            "reminder": _reminder(conn, row["broadcast_id"])}


def _broadcast(conn: sqlite3.Connection, broadcast_id: int, snapshot: dict) -> dict:
    try:
        s = broadcasts.summary(conn, broadcast_id)
    except broadcasts.BroadcastError:
        return {"broadcast_id": broadcast_id, "state": snapshot.get("state")}
    return {"broadcast_id": broadcast_id, "state": snapshot.get("state", s["state"]),
            "title": s["title"], "total": s["total"], "counts": s["counts"],
            "acknowledged": s["acknowledged"], "tally": s["tally"],
            "reminder": _reminder(conn, broadcast_id)}


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fan_out(conn: sqlite3.Connection, config: Config, now: float, *, limit: int = 200) -> int:
    """Render new events and queue a delivery for each webhook that wants them (inside a
    write transaction); returns how many events were handled."""
    events = conn.execute("SELECT * FROM api_events WHERE body IS NULL ORDER BY id LIMIT ?",
                          [limit]).fetchall()
    give_up = now + config.api.webhook_give_up_hours * 3600
    for event in events:
        body = body_bytes(render(conn, config, event)).decode("utf-8")
        conn.execute("UPDATE api_events SET body = ? WHERE id = ?", [body, event["id"]])
        conn.execute(
            "INSERT OR IGNORE INTO api_deliveries (webhook_id, event_id, created_at, give_up_at) "
            "SELECT id, ?, ?, ? FROM api_webhooks WHERE enabled = 1 AND instr(events, ?)",
            [event["id"], now, give_up, f",{event['type']},"])
    return len(events)


# -- delivering ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    """One delivery to send: everything the pool thread needs, nothing from the database."""
    delivery_id: int
    event_id: int
    event_type: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    status: int | None          # the receiver's HTTP status; None: no answer
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        """The receiver answered and does not want it: retrying would not change that."""
        return self.status is not None and 400 <= self.status < 500 and \
            self.status not in RETRIED_4XX


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None   # a redirect is an answer to record, not a place to send patient data


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, data: bytes, head: dict[str, str], timeout: float) -> tuple[int | None,
                                                                                str | None]:
    """POST once: (HTTP status, error text); never raises for the receiver's faults."""
    request = urllib.request.Request(url, data=data, headers=head, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}"[:ERROR_MAX]


Post = Callable[[str, bytes, dict, float], tuple[int | None, str | None]]


def _send_batch(url: str, secret: str, attempts: list[Attempt], timeout: float,
                clock: Callable[[], float], post_: Post) -> list[Outcome]:
    """Runs in a pool thread: the attempts in order, stopping at the first the receiver could
    not take (the rest wait behind it, in order)."""
    out = []
    for a in attempts:
        head = headers(event_type=a.event_type, event_id=a.event_id, delivery_id=a.delivery_id,
                       secret=secret, timestamp=int(clock()), body=a.body)
        status, error = post_(url, a.body, head, timeout)
        outcome = Outcome(a.delivery_id, status, error)
        out.append(outcome)
        if not (outcome.delivered or outcome.refused):
            break
    return out


class Deliverer:
    """The daemon's webhook job; see the module docstring. `run(now)` never blocks on a
    receiver; `stop()` at shutdown (what was in flight goes again at the next start)."""

    def __init__(self, database: Callable[[], sqlite_utils.Database], config: Config, *,
                 clock: Callable[[], float], post_: Post = post, threads: int = POOL_THREADS):
        self._database = database
        self.config = config
        self.clock = clock
        self._post = post_
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        self._running: dict[int, Future] = {}      # webhook id → its batch in flight
        self._next_prune = 0.0

    def run(self, now: float) -> int:
        """Record answers, fan out new events, give up the too old, send the due. Returns
        how many answers were recorded."""
        db = self._database()
        recorded = self._collect(db, now)
        conn = db.conn
        if conn.execute("SELECT 1 FROM api_events WHERE body IS NULL LIMIT 1").fetchone():
            with write(db) as c:
                fan_out(c, self.config, now)
        if conn.execute("SELECT 1 FROM api_deliveries WHERE state = 'pending' AND "
                        "give_up_at <= ? LIMIT 1", [now]).fetchone():
            with write(db) as c:
                give_up(c, now)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            with write(db) as c:
                prune(c, now)
        for hook in conn.execute(
                "SELECT w.id, w.url, w.secret FROM api_webhooks w WHERE w.enabled = 1 AND "
                "(w.retry_at IS NULL OR w.retry_at <= ?) AND EXISTS (SELECT 1 FROM "
                "api_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending')",
                [now]).fetchall():
            if hook["id"] in self._running:
                continue
            attempts = [Attempt(r["id"], r["event_id"], r["type"], r["body"].encode("utf-8"))
                        for r in conn.execute(
                            "SELECT d.id, d.event_id, e.type, e.body FROM api_deliveries d JOIN "
                            "api_events e ON e.id = d.event_id WHERE d.webhook_id = ? AND "
                            "d.state = 'pending' ORDER BY d.id LIMIT ?", [hook["id"], BATCH])]
            self._running[hook["id"]] = self._pool.submit(
                _send_batch, hook["url"], hook["secret"], attempts,
                self.config.api.webhook_timeout, self.clock, self._post)
        return recorded

    def busy(self) -> bool:
        return bool(self._running)

    def wait(self, timeout: float) -> bool:
        """Until the batches in flight have their answers (recorded by the next run)."""
        done, pending = futures_wait(list(self._running.values()), timeout=timeout)
        return not pending

    def _collect(self, db: sqlite_utils.Database, now: float) -> int:
        done = {w: f for w, f in self._running.items() if f.done()}
        count = 0
        for webhook_id, future in done.items():
            del self._running[webhook_id]
            outcomes = future.result()   # _send_batch catches the receiver's faults itself
            with write(db) as conn:
                for outcome in outcomes:
                    record(conn, self.config, webhook_id, outcome, now)
            count += len(outcomes)
        return count

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def record(conn: sqlite3.Connection, config: Config, webhook_id: int, outcome: Outcome,
           now: float) -> None:
    """A delivery's answer (inside a write transaction), and its webhook's back-off."""
    if outcome.delivered:
        conn.execute("UPDATE api_deliveries SET state = 'delivered', attempts = attempts + 1, "
                     "last_attempt_at = ?, last_status = ?, last_error = NULL, delivered_at = ? "
                     "WHERE id = ? AND state = 'pending'",
                     [now, outcome.status, now, outcome.delivery_id])
        conn.execute("UPDATE api_webhooks SET failures = 0, retry_at = NULL, "
                     "last_success_at = ? WHERE id = ?", [now, webhook_id])
        return
    if outcome.refused:
        conn.execute("UPDATE api_deliveries SET state = 'failed', attempts = attempts + 1, "
                     "last_attempt_at = ?, last_status = ?, last_error = ? "
                     "WHERE id = ? AND state = 'pending'",
                     [now, outcome.status, f"refused by the receiver: {outcome.error}",
                      outcome.delivery_id])
        conn.execute("UPDATE api_webhooks SET failures = 0, retry_at = NULL, last_error = ?, "
                     "last_error_at = ? WHERE id = ?",
                     [f"refused: {outcome.error}", now, webhook_id])
        return
    failures = conn.execute("SELECT failures FROM api_webhooks WHERE id = ?",
                            [webhook_id]).fetchone()
    failures = (failures[0] if failures else 0) + 1
    conn.execute("UPDATE api_deliveries SET attempts = attempts + 1, last_attempt_at = ?, "
                 "last_status = ?, last_error = ? WHERE id = ? AND state = 'pending'",
                 [now, outcome.status, outcome.error, outcome.delivery_id])
    conn.execute("UPDATE api_webhooks SET failures = ?, retry_at = ?, last_error = ?, "
                 "last_error_at = ? WHERE id = ?",
                 [failures, now + backoff(config, failures), outcome.error, now, webhook_id])


def backoff(config: Config, failures: int) -> float:
    """Seconds before the next try after *failures* in a row: doubling, capped."""
    return min(config.api.webhook_retry_max,
               config.api.webhook_retry_first * 2 ** max(0, failures - 1))


def give_up(conn: sqlite3.Connection, now: float) -> int:
    """Deliveries still failing at their give_up_at are failed (they stay re-sendable)."""
    count = conn.execute(
        "UPDATE api_deliveries SET state = 'failed', last_error = 'gave up: not delivered in "
        "time (' || coalesce(last_error, 'no answer') || ')' WHERE state = 'pending' "
        "AND give_up_at <= ?", [now]).rowcount
    if count:
        audit.record(conn, "daemon", "api_webhook_gave_up", deliveries=count)
    return count


def resend(conn: sqlite3.Connection, config: Config, delivery_ids: list[int], *, actor: str,
           now: float, remote_addr: str | None = None) -> int:
    """Queue failed (or delivered) deliveries again, with a fresh give-up time; the webhook
    is tried at once. Returns how many."""
    ids = [int(i) for i in delivery_ids]
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    count = conn.execute(
        f"UPDATE api_deliveries SET state = 'pending', give_up_at = ?, delivered_at = NULL "
        f"WHERE id IN ({marks}) AND state != 'pending'",
        [now + config.api.webhook_give_up_hours * 3600, *ids]).rowcount
    conn.execute(f"UPDATE api_webhooks SET retry_at = NULL, failures = 0 WHERE id IN "
                 f"(SELECT webhook_id FROM api_deliveries WHERE id IN ({marks}))", ids)
    audit.record(conn, actor, "api_webhook_resend", remote_addr, deliveries=ids[:50],
                 count=count)
    return count


def token_of_delivery(conn: sqlite3.Connection, delivery_id: int) -> int | None:
    row = conn.execute("SELECT w.token_id FROM api_deliveries d JOIN api_webhooks w ON "
                       "w.id = d.webhook_id WHERE d.id = ?", [delivery_id]).fetchone()
    return row[0] if row else None


def failed_ids(conn: sqlite3.Connection, webhook_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM api_deliveries WHERE webhook_id = ? AND "
                                       "state = 'failed' ORDER BY id", [webhook_id])]


def deliveries(conn: sqlite3.Connection, *, webhook_id: int | None = None,
               state: str | None = None, limit: int = 100) -> list[dict]:
    """Newest first, for the admin page."""
    clauses, params = [], []
    if webhook_id is not None:
        clauses.append("d.webhook_id = ?")
        params.append(webhook_id)
    if state is not None:
        clauses.append("d.state = ?")
        params.append(state)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return [dict(r) for r in conn.execute(
        f"SELECT d.*, e.type, e.at AS event_at, e.subject, t.name AS token_name, w.url "
        f"FROM api_deliveries d JOIN api_events e ON e.id = d.event_id "
        f"JOIN api_webhooks w ON w.id = d.webhook_id JOIN api_tokens t ON t.id = w.token_id "
        f"{where} ORDER BY d.id DESC LIMIT ?", [*params, limit])]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    out = {"pending": 0, "delivered": 0, "failed": 0}
    out.update({r[0]: r[1] for r in conn.execute(
        "SELECT state, count(*) FROM api_deliveries GROUP BY state")})
    return out


def prune(conn: sqlite3.Connection, now: float) -> int:
    """Forget deliveries delivered long ago and the events nobody waits for."""
    count = conn.execute("DELETE FROM api_deliveries WHERE state = 'delivered' AND "
                         "delivered_at < ?", [now - KEEP_DELIVERED_DAYS * 86400]).rowcount
    conn.execute("DELETE FROM api_events WHERE body IS NOT NULL AND at < ? AND id NOT IN "
                 "(SELECT event_id FROM api_deliveries)", [now - KEEP_DELIVERED_DAYS * 86400])
    return count


def failing(conn: sqlite3.Connection, now: float) -> list[dict]:
    """Webhooks whose receiver is not answering, and failed deliveries of the last day, for
    the dashboard and `tsunagu check`."""
    out = []
    for r in conn.execute(
            "SELECT w.id, w.url, w.failures, w.last_error, w.last_error_at, t.name AS token, "
            "(SELECT count(*) FROM api_deliveries d WHERE d.webhook_id = w.id AND "
            "d.state = 'pending') AS pending, (SELECT count(*) FROM api_deliveries d WHERE "
            "d.webhook_id = w.id AND d.state = 'failed' AND coalesce(d.last_attempt_at, "
            "d.created_at) >= ?) AS failed FROM api_webhooks w JOIN api_tokens t ON "
            "t.id = w.token_id WHERE w.enabled = 1", [now - 86400]):
        if r["failures"] or r["failed"]:
            out.append(dict(r))
    return out
