"""Personal reminders: each patient's own appointment (透析予約, 採血, 診察…), told by SMS.

Appointments come from the clinic's scheduling system, as a CSV export (reminders_csv) or
through the API (PUT /reminders/{appointment ID}); both call `upsert` and `withdraw`.

A *kind* holds the rules: the text (a template or its own, with {date} and {time} filled
with the patient's own appointment; {original_time} with the time first announced), when to
send (N days before at HH:MM, or N hours before), quiet hours (no SMS then, unless the kind
is an emergency), the latest moment before the appointment a reminder may still go, and the
reply choices (1 はい / 2 変更したい) whose answers show on the reminders page and reach the
webhooks (reply.received names the reminder).

The daemon runs `run_due(now)` every few seconds under its job guard. A reminder whose
moment has come becomes a one-person broadcast, through broadcasts.plan and create like
every other send (the same checks, the same queue); its request key makes it once per
revision, whatever restarts. Within the SIM budget: a routine reminder goes only while the
SIMs' remaining budget, after what is already waiting, keeps `[reminders] reserve` parts for
emergencies and staff's broadcasts, and nothing is held back by the daily limits
(budget.held_back) — when the budget is tight the reminders spread over their window as the
rolling 24 hours free room; emergency kinds go first and need only the room itself.

Never late: a reminder that has not begun sending when its window ends (the latest moment
before the appointment) is withdrawn from the queue and reported *missed* — on the
reminders page, the dashboard and by `tsunagu check` — and one caught by the quiet hours
goes back to wait for their end. A changed appointment takes back a reminder not yet begun
and sends the new time; a sent one is sent again with the new time (changed_text when the
kind has one). A cancelled appointment withdraws its reminder.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import unicodedata
from dataclasses import dataclass

from . import audit, broadcasts, budget, outbox, templates
from .config import Config
from .clock import in_daily_window

log = logging.getLogger(__name__)

ACTOR = "reminders"
SUPPLIES = frozenset({"date", "time", "original_time"})   # what a reminder fills itself
STATES = ("pending", "queued", "sent", "failed", "withdrawn", "missed")
OPEN = ("pending", "queued")
NAME_MAX = 40
BATCH = 50            # reminders queued per run: the write lock is never held for long
DAYS_MAX = 14
HOURS_MAX = 14 * 24
# Why a reminder waits, was withdrawn or missed; words in the UI (webui.reminder_views).
REASONS = ("quiet", "budget", "late", "no_time", "cancelled", "broadcast_cancelled",
           "contact_inactive", "uncertain", "kind_disabled")


class ReminderError(ValueError):
    """A reminder or a kind refused as asked; `field` names the form or JSON field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- kinds ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    id: int
    name: str
    template_id: int | None
    text: str | None
    changed_text: str | None
    days_before: int | None
    send_time: dt.time | None
    hours_before: float | None
    quiet_start: dt.time | None
    quiet_end: dt.time | None
    latest_minutes: int
    choices: tuple[str, ...]
    priority: str
    enabled: bool

    @property
    def emergency(self) -> bool:
        return self.priority == "emergency"

    @property
    def rank(self) -> int:
        return 0 if self.emergency else 1


def _clock(text: str | None) -> dt.time | None:
    return dt.time.fromisoformat(text) if text else None


def _kind(row: sqlite3.Row) -> Kind:
    return Kind(id=row["id"], name=row["name"], template_id=row["template_id"],
                text=row["text"], changed_text=row["changed_text"],
                days_before=row["days_before"], send_time=_clock(row["send_time"]),
                hours_before=row["hours_before"], quiet_start=_clock(row["quiet_start"]),
                quiet_end=_clock(row["quiet_end"]), latest_minutes=row["latest_minutes"],
                choices=tuple(json.loads(row["choices"]) if row["choices"] else ()),
                priority=row["priority"], enabled=bool(row["enabled"]))


def kinds(conn: sqlite3.Connection) -> list[Kind]:
    return [_kind(r) for r in conn.execute("SELECT * FROM reminder_kinds ORDER BY name")]


def kind(conn: sqlite3.Connection, kind_id: int) -> Kind | None:
    row = conn.execute("SELECT * FROM reminder_kinds WHERE id = ?", [kind_id]).fetchone()
    return _kind(row) if row else None


def kind_by_name(conn: sqlite3.Connection, name: str) -> Kind | None:
    row = conn.execute("SELECT * FROM reminder_kinds WHERE name = ?",
                       [_name(name)]).fetchone()
    return _kind(row) if row else None


def _name(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def parse_clock(text: str | None, *, field: str) -> dt.time | None:
    """'17:00', '9:30', '１７：００' → a time; empty → None; else ReminderError."""
    value = unicodedata.normalize("NFKC", text or "").strip()
    if not value:
        return None
    hour, sep, minute = value.partition(":")
    if sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 \
            and len(minute) == 2:
        return dt.time(int(hour), int(minute))
    raise ReminderError(f"write the time as 17:00 (got {text!r}) / 時刻は 17:00 のように書いて"
                        "ください", field=field)


def kind_text(conn: sqlite3.Connection, k: Kind) -> str:
    if k.template_id:
        row = conn.execute("SELECT text FROM templates WHERE id = ?", [k.template_id]).fetchone()
        return row["text"] if row else ""
    return k.text or ""


def save_kind(conn: sqlite3.Connection, config: Config, *, name: str, actor: str, now: float,
              kind_id: int | None = None, template_id: int | None = None,
              text: str | None = None, changed_text: str | None = None,
              days_before: int | None = None, send_time: str | None = None,
              hours_before: float | None = None, quiet_start: str | None = None,
              quiet_end: str | None = None, latest_minutes: int = 60, choices=None,
              priority: str = "routine", enabled: bool = True,
              remote_addr: str | None = None) -> int:
    """Create or change a kind (inside a write transaction), checked with the sender's own
    text check for the values a reminder fills; ReminderError names the field."""
    name = _name(name)
    if not name or len(name) > NAME_MAX:
        raise ReminderError(f"a kind needs a name of up to {NAME_MAX} characters "
                            "/ 種類の名前を入力してください", field="name")
    taken = conn.execute("SELECT id FROM reminder_kinds WHERE name = ?", [name]).fetchone()
    if taken and taken["id"] != kind_id:
        raise ReminderError(f"a kind named 「{name}」 exists / 同じ名前の種類があります",
                            field="name")
    text = (text or "").strip() or None
    if bool(text) == bool(template_id):
        raise ReminderError("give a text or a template / 本文かテンプレートを選んでください",
                            field="text")
    if template_id:
        row = conn.execute("SELECT text FROM templates WHERE id = ?", [template_id]).fetchone()
        if row is None:
            raise ReminderError(f"no template with id {template_id}", field="template_id")
        _check_text(row["text"], config, "template_id")
    else:
        _check_text(text, config, "text")
    changed_text = (changed_text or "").strip() or None
    if changed_text:
        _check_text(changed_text, config, "changed_text")
    if (days_before is None) == (hours_before is None):
        raise ReminderError("send either N days before at a time, or N hours before "
                            "/ 「何日前の何時」か「何時間前」のどちらかを指定してください",
                            field="days_before")
    clock = None
    if days_before is not None:
        if not isinstance(days_before, int) or not 0 <= days_before <= DAYS_MAX:
            raise ReminderError(f"days before: 0 to {DAYS_MAX} / 0〜{DAYS_MAX}日前で指定してください",
                                field="days_before")
        clock = parse_clock(send_time, field="send_time")
        if clock is None:
            raise ReminderError("the time of day to send is missing, e.g. 17:00 "
                                "/ 送信時刻を入力してください", field="send_time")
    elif not 0 < float(hours_before) <= HOURS_MAX:
        raise ReminderError(f"hours before: more than 0, at most {HOURS_MAX} "
                            "/ 何時間前かを正しく指定してください", field="hours_before")
    quiet = (parse_clock(quiet_start, field="quiet_start"),
             parse_clock(quiet_end, field="quiet_end"))
    if (quiet[0] is None) != (quiet[1] is None) or (quiet[0] and quiet[0] == quiet[1]):
        raise ReminderError("quiet hours need a start and a different end, e.g. 21:00-08:00 "
                            "/ 送信しない時間帯は開始と終了を指定してください", field="quiet_start")
    if not isinstance(latest_minutes, int) or not 0 <= latest_minutes <= 24 * 60:
        raise ReminderError("the latest moment is 0 to 1440 minutes before the appointment "
                            "/ 0〜1440分で指定してください", field="latest_minutes")
    if priority not in broadcasts.PRIORITIES:
        raise ReminderError(f"priority must be one of {', '.join(broadcasts.PRIORITIES)}",
                            field="priority")
    try:
        choice_list = broadcasts.parse_choices(choices)
    except broadcasts.BroadcastError as exc:
        raise ReminderError(str(exc), field="choices") from None
    values = [name, template_id, text, changed_text, days_before,
              clock.strftime("%H:%M") if clock else None,
              float(hours_before) if hours_before is not None else None,
              quiet[0].strftime("%H:%M") if quiet[0] else None,
              quiet[1].strftime("%H:%M") if quiet[1] else None, latest_minutes,
              json.dumps(choice_list, ensure_ascii=False) if choice_list else None, priority,
              int(bool(enabled)), now]
    columns = ("name, template_id, text, changed_text, days_before, send_time, hours_before, "
               "quiet_start, quiet_end, latest_minutes, choices, priority, enabled, updated_at")
    if kind_id is None:
        kind_id = conn.execute(
            f"INSERT INTO reminder_kinds ({columns}, created_by, created_at) VALUES "
            f"({','.join('?' * 16)})", [*values, actor, now]).lastrowid
        action = "reminder_kind_add"
    else:
        sets = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
        if not conn.execute(f"UPDATE reminder_kinds SET {sets} WHERE id = ?",
                            [*values, kind_id]).rowcount:
            raise ReminderError(f"no reminder kind with id {kind_id}", field="id")
        action = "reminder_kind_change"
    audit.record(conn, actor, action, remote_addr, kind_id=kind_id, name=name)
    return kind_id


def _check_text(text: str | None, config: Config, field: str) -> None:
    try:
        templates.check_text(text or "", clinic=config.clinic_name, supplied=SUPPLIES,
                             who="リマインダー")
    except templates.TemplateError as exc:
        raise ReminderError(str(exc), field=field) from None


# -- timing ---------------------------------------------------------------------------------

def _local(at: float, zone) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, zone)


def window(k: Kind, appointment_at: float, zone) -> tuple[float, float]:
    """(the moment the kind sends at, the latest moment it may still go)."""
    appointment = _local(appointment_at, zone)
    if k.days_before is not None:
        day = appointment.date() - dt.timedelta(days=k.days_before)
        start = dt.datetime.combine(day, k.send_time, zone).timestamp()
    else:
        start = appointment_at - k.hours_before * 3600
    return start, appointment_at - k.latest_minutes * 60


def quiet(k: Kind, at: float, zone) -> bool:
    """Is *at* within the kind's quiet hours (an emergency kind has none)?"""
    if k.emergency or k.quiet_start is None:
        return False
    return in_daily_window(at, zone, k.quiet_start, k.quiet_end)


def first_allowed(k: Kind, at: float, zone) -> float:
    """The first moment from *at* outside the quiet hours."""
    if not quiet(k, at, zone):
        return at
    moment = _local(at, zone)
    end = dt.datetime.combine(moment.date(), k.quiet_end, zone)
    if end.timestamp() <= at:
        end = dt.datetime.combine(moment.date() + dt.timedelta(days=1), k.quiet_end, zone)
    return end.timestamp()


def planned_at(k: Kind, appointment_at: float, zone, *, now: float | None = None
               ) -> float | None:
    """When the reminder goes (from *now* when its moment has passed), or None when no moment
    outside the quiet hours is left before its latest moment."""
    start, end = window(k, appointment_at, zone)
    moment = first_allowed(k, max(start, now) if now is not None else start, zone)
    return moment if moment < end else None


# -- appointments: the one way in for the CSV import and the API ----------------------------

@dataclass(frozen=True)
class Change:
    action: str           # 'new', 'changed', 'unchanged', 'reopened', 'withdrawn'
    reminder_id: int
    previous_at: float | None = None


def _row(conn: sqlite3.Connection, reminder_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM reminders WHERE id = ?", [reminder_id]).fetchone()


def by_external_id(conn: sqlite3.Connection, external_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM reminders WHERE external_id = ?",
                        [external_id]).fetchone()


def on_day(conn: sqlite3.Connection, contact_id: int, kind_id: int, day: dt.date,
           zone) -> sqlite3.Row | None:
    """A patient's reminder of this kind on this local day (matching rows without an ID)."""
    start = dt.datetime.combine(day, dt.time(0), zone).timestamp()
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone).timestamp()
    return conn.execute("SELECT * FROM reminders WHERE contact_id = ? AND kind_id = ? AND "
                        "appointment_at >= ? AND appointment_at < ? AND external_id IS NULL "
                        "ORDER BY state != 'withdrawn', id DESC LIMIT 1",
                        [contact_id, kind_id, start, end]).fetchone()


def upsert(conn: sqlite3.Connection, *, contact_id: int, kind_id: int, appointment_at: float,
           actor: str, now: float, source: str, external_id: str | None = None,
           existing: sqlite3.Row | None = None) -> Change:
    """Add an appointment, or change the one it matches (inside a write transaction)."""
    if existing is None and external_id is not None:
        existing = by_external_id(conn, external_id)
    if existing is None:
        reminder_id = conn.execute(
            "INSERT INTO reminders (external_id, contact_id, kind_id, appointment_at, source, "
            "created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
            [external_id, contact_id, kind_id, appointment_at, source, actor, now,
             now]).lastrowid
        audit.record(conn, actor, "reminder_add", reminder_id=reminder_id,
                     contact_id=contact_id, kind_id=kind_id, appointment_at=appointment_at)
        return Change("new", reminder_id)
    same = (existing["appointment_at"] == appointment_at and existing["contact_id"] == contact_id
            and existing["kind_id"] == kind_id)
    if same and existing["state"] != "withdrawn":
        return Change("unchanged", existing["id"])
    announced = existing["announced_at"]
    if existing["state"] == "queued":
        outcome = _take_back(conn, existing, actor, now)
        if outcome == "begun":
            announced = existing["appointment_at"]   # it is (being) told the old time
    elif existing["state"] == "sent":
        announced = existing["appointment_at"]
    conn.execute("UPDATE reminders SET contact_id = ?, kind_id = ?, appointment_at = ?, "
                 "announced_at = ?, state = 'pending', reason = NULL, broadcast_id = NULL, "
                 "revision = revision + 1, updated_at = ? WHERE id = ?",
                 [contact_id, kind_id, appointment_at, announced, now, existing["id"]])
    action = "reopened" if existing["state"] == "withdrawn" else "changed"
    audit.record(conn, actor, f"reminder_{'reopen' if action == 'reopened' else 'change'}",
                 reminder_id=existing["id"], previous_at=existing["appointment_at"],
                 appointment_at=appointment_at, was=existing["state"])
    return Change(action, existing["id"], existing["appointment_at"])


def withdraw(conn: sqlite3.Connection, reminder_id: int, *, actor: str, now: float,
             reason: str = "cancelled") -> Change:
    """The appointment is cancelled: nothing more is sent for it (a message already on its
    way finishes; inside a write transaction)."""
    row = _row(conn, reminder_id)
    if row is None:
        raise ReminderError(f"no reminder with id {reminder_id}", field="id")
    if row["state"] == "withdrawn":
        return Change("unchanged", reminder_id)
    if row["state"] == "queued":
        _take_back(conn, row, actor, now)
    conn.execute("UPDATE reminders SET state = 'withdrawn', reason = ?, updated_at = ? "
                 "WHERE id = ?", [reason, now, reminder_id])
    audit.record(conn, actor, "reminder_withdraw", reminder_id=reminder_id, was=row["state"])
    return Change("withdrawn", reminder_id)


def _recipient(conn: sqlite3.Connection, broadcast_id: int | None) -> sqlite3.Row | None:
    if broadcast_id is None:
        return None
    return conn.execute(f"SELECT *, {outbox.SHOWN_STATE} AS shown FROM recipients "
                        "WHERE broadcast_id = ? ORDER BY id LIMIT 1", [broadcast_id]).fetchone()


def _take_back(conn: sqlite3.Connection, row: sqlite3.Row, actor: str, now: float) -> str:
    """Cancel a queued reminder's broadcast if its message has not begun: 'taken' when it
    was, 'begun' when it is already on its way (or sent), 'gone' when nothing is queued."""
    recipient = _recipient(conn, row["broadcast_id"])
    if recipient is None or recipient["shown"] in ("cancelled",):
        return "gone"
    if recipient["shown"] != "queued":
        return "begun"
    cancelled = broadcasts.cancel(conn, row["broadcast_id"], actor=actor, now=now)
    return "taken" if cancelled else "begun"


# -- the daemon's job -------------------------------------------------------------------------

def run_due(conn: sqlite3.Connection, config: Config, now: float) -> list[int]:
    """Settle the reminders queued before, and queue those whose moment has come; returns
    the broadcasts made. Call inside a write transaction (the daemon's job does)."""
    zone = config.zone
    all_kinds = {k.id: k for k in kinds(conn)}
    _settle_queued(conn, all_kinds, zone, now)
    candidates = []
    for row in conn.execute("SELECT * FROM reminders WHERE state = 'pending' "
                            "ORDER BY appointment_at, id").fetchall():
        k = all_kinds[row["kind_id"]]
        start, end = window(k, row["appointment_at"], zone)
        if now >= end:
            _missed(conn, row, "no_time" if planned_at(k, row["appointment_at"], zone) is None
                    else "late", now)
        elif now < start:
            continue
        elif not k.enabled:
            _set_reason(conn, row, "kind_disabled", now)
        elif quiet(k, now, zone):
            _set_reason(conn, row, "quiet", now)
        else:
            candidates.append((k.rank, end, row["appointment_at"], row["id"], row, k))
    if not candidates:
        return []
    candidates.sort(key=lambda c: c[:4])
    room = sum(budget.capacity(conn, config, now).values()) - _waiting_parts(conn)
    held = bool(budget.held_back(conn, config, now))
    created = []
    for *_order, row, k in candidates[:BATCH]:
        conn.execute("SAVEPOINT reminder")
        try:
            broadcast_id, parts = _queue(conn, config, row, k, now, room=room, held=held)
        except Exception as exc:  # one reminder's failure is its own; the others still go
            conn.execute("ROLLBACK TO reminder")
            _failed(conn, row, exc, now)
            broadcast_id, parts = None, 0
        conn.execute("RELEASE reminder")
        if broadcast_id is not None:
            created.append(broadcast_id)
            room -= parts
    return created


def _waiting_parts(conn: sqlite3.Connection) -> int:
    """Parts queued and not yet sent: they take the budget before a new reminder."""
    return conn.execute(
        "SELECT coalesce(sum(r.parts_count), 0) FROM recipients r JOIN broadcasts b ON "
        "b.id = r.broadcast_id WHERE r.state IN ('queued', 'sending') AND "
        "b.state NOT IN ('cancelled', 'scheduled')").fetchone()[0]


def _values(row: sqlite3.Row, zone) -> dict:
    at = _local(row["appointment_at"], zone)
    told = _local(row["announced_at"] or row["appointment_at"], zone)
    return {"date": at.date(), "time": at.time(), "original_time": told.time()}


def _queue(conn: sqlite3.Connection, config: Config, row: sqlite3.Row, k: Kind, now: float,
           *, room: int, held: bool) -> tuple[int | None, int]:
    contact = conn.execute("SELECT active FROM contacts WHERE id = ?",
                           [row["contact_id"]]).fetchone()
    if contact is None or not contact["active"]:
        conn.execute("UPDATE reminders SET state = 'failed', reason = 'contact_inactive', "
                     "updated_at = ? WHERE id = ?", [now, row["id"]])
        audit.record(conn, ACTOR, "reminder_failed", reminder_id=row["id"],
                     reason="contact_inactive")
        return None, 0
    changed = row["announced_at"] is not None and row["announced_at"] != row["appointment_at"]
    text = k.changed_text if changed and k.changed_text else kind_text(conn, k)
    p = broadcasts.plan(conn, config, text=text, contact_ids=[row["contact_id"]],
                        priority=k.priority, choices=list(k.choices),
                        values=_values(row, config.zone), now=now)
    # Routine reminders leave the reserve, and wait while the daily limits already hold
    # messages back; an emergency needs only the room. Waiting is within the window: at its
    # end the reminder is reported missed, never sent late.
    wanted = p.parts + (0 if k.emergency else config.reminders.reserve)
    if p.parts > room or (not k.emergency and (held or wanted > room)):
        _set_reason(conn, row, "budget", now)
        return None, 0
    broadcast_id = broadcasts.create(conn, p, title=f"{k.name}のお知らせ", actor=ACTOR, now=now,
                                     template_id=k.template_id,
                                     request_key=f"reminder:{row['id']}:{row['revision']}")
    conn.execute("UPDATE reminders SET state = 'queued', broadcast_id = ?, reason = NULL, "
                 "updated_at = ? WHERE id = ?", [broadcast_id, now, row["id"]])
    return broadcast_id, p.parts


def _set_reason(conn: sqlite3.Connection, row: sqlite3.Row, reason: str, now: float) -> None:
    if row["reason"] != reason:
        conn.execute("UPDATE reminders SET reason = ?, updated_at = ? WHERE id = ?",
                     [reason, now, row["id"]])


def _missed(conn: sqlite3.Connection, row: sqlite3.Row, reason: str, now: float) -> None:
    conn.execute("UPDATE reminders SET state = 'missed', reason = ?, updated_at = ? "
                 "WHERE id = ?", [reason, now, row["id"]])
    audit.record(conn, ACTOR, "reminder_missed", reminder_id=row["id"], reason=reason,
                 appointment_at=row["appointment_at"])
    log.warning("reminder %d could not go in time (%s): reported, not sent late",
                row["id"], reason)


def _failed(conn: sqlite3.Connection, row: sqlite3.Row, exc: Exception, now: float) -> None:
    from .jobs import describe
    error = describe(exc)
    conn.execute("UPDATE reminders SET state = 'failed', reason = ?, updated_at = ? "
                 "WHERE id = ?", [error, now, row["id"]])
    audit.record(conn, ACTOR, "reminder_failed", reminder_id=row["id"], error=error)
    log.error("reminder %d cannot be sent: %s", row["id"], error)


def _settle_queued(conn: sqlite3.Connection, all_kinds: dict[int, Kind], zone,
                   now: float) -> None:
    """What became of the reminders queued before: sent, failed, cancelled by staff — and
    those not begun when their window closed (missed) or the quiet hours began (back to
    wait)."""
    for row in conn.execute("SELECT * FROM reminders WHERE state = 'queued'").fetchall():
        recipient = _recipient(conn, row["broadcast_id"])
        shown = recipient["shown"] if recipient is not None else "cancelled"
        if shown in ("submitted", "delivered"):
            conn.execute("UPDATE reminders SET state = 'sent', sent_at = ?, announced_at = "
                         "appointment_at, reason = NULL, updated_at = ? WHERE id = ?",
                         [recipient["submitted_at"] or now, now, row["id"]])
        elif shown in ("failed", "uncertain"):
            reason = "uncertain" if shown == "uncertain" else (recipient["reason"] or "failed")
            conn.execute("UPDATE reminders SET state = 'failed', reason = ?, updated_at = ? "
                         "WHERE id = ?", [reason, now, row["id"]])
        elif shown == "cancelled":
            conn.execute("UPDATE reminders SET state = 'withdrawn', reason = "
                         "'broadcast_cancelled', updated_at = ? WHERE id = ?", [now, row["id"]])
        elif shown == "queued":
            k = all_kinds[row["kind_id"]]
            _start, end = window(k, row["appointment_at"], zone)
            if now >= end:
                _take_back(conn, row, ACTOR, now)
                _missed(conn, row, "late", now)
            elif quiet(k, now, zone):
                _take_back(conn, row, ACTOR, now)
                conn.execute("UPDATE reminders SET state = 'pending', reason = 'quiet', "
                             "broadcast_id = NULL, revision = revision + 1, updated_at = ? "
                             "WHERE id = ?", [now, row["id"]])


# -- reading ---------------------------------------------------------------------------------

_SELECT = """
SELECT m.*, k.name AS kind_name, c.name AS contact_name, c.patient_id, c.phone,
       r.choice, r.acknowledged_at, i.text AS reply_text, b.choices AS choices
FROM reminders m JOIN reminder_kinds k ON k.id = m.kind_id
JOIN contacts c ON c.id = m.contact_id
LEFT JOIN recipients r ON r.broadcast_id = m.broadcast_id
LEFT JOIN inbound_messages i ON i.id = r.reply_id
LEFT JOIN broadcasts b ON b.id = m.broadcast_id"""


def _item(row: sqlite3.Row, k: Kind, zone, now: float) -> dict:
    item = dict(row)
    choices = json.loads(row["choices"]) if row["choices"] else []
    item["choice_text"] = (choices[row["choice"] - 1]
                           if row["choice"] and row["choice"] <= len(choices) else None)
    item["planned_at"] = (planned_at(k, row["appointment_at"], zone, now=now)
                          if row["state"] == "pending" else None)
    return item


def listing(conn: sqlite3.Connection, config: Config, now: float, *,
            states: tuple[str, ...] | None = None, since: float | None = None,
            limit: int = 500) -> list[dict]:
    """Reminders by appointment time, with the planned send time and the reply."""
    clauses, params = [], []
    if states:
        clauses.append(f"m.state IN ({','.join('?' * len(states))})")
        params += list(states)
    if since is not None:
        clauses.append("m.appointment_at >= ?")
        params.append(since)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    all_kinds = {k.id: k for k in kinds(conn)}
    rows = conn.execute(f"{_SELECT}{where} ORDER BY m.appointment_at, m.id LIMIT ?",
                        [*params, limit]).fetchall()
    return [_item(r, all_kinds[r["kind_id"]], config.zone, now) for r in rows]


def get(conn: sqlite3.Connection, config: Config, reminder_id: int, now: float) -> dict | None:
    row = conn.execute(f"{_SELECT} WHERE m.id = ?", [reminder_id]).fetchone()
    if row is None:
        return None
    return _item(row, kind(conn, row["kind_id"]), config.zone, now)


def missed(conn: sqlite3.Connection, since: float) -> list[dict]:
    """Reminders that could not go in time (or failed), for the dashboard and `check`."""
    return [dict(r) for r in conn.execute(
        "SELECT m.id, m.state, m.reason, m.appointment_at, m.updated_at, k.name AS kind_name, "
        "c.name AS contact_name FROM reminders m JOIN reminder_kinds k ON k.id = m.kind_id "
        "JOIN contacts c ON c.id = m.contact_id WHERE m.state IN ('missed', 'failed') AND "
        "m.updated_at >= ? ORDER BY m.appointment_at", [since])]
