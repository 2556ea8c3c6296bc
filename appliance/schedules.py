"""Recurring broadcasts ("every Monday 17:00, the blood-test notice to 月水金").

Stored in the schedules table (so they survive restarts), timed with APScheduler's
CronTrigger in the clinic's timezone, and run by the daemon's timer loop through
`run_due(now)`, which takes the time as an argument: tests drive it with any clock.

Missed runs (the appliance was off or rebooting at the time): the latest missed run is
sent when the appliance comes back if it is less than MISSED_GRACE late — a reboot or a
short power cut should not swallow a reminder. Anything later is skipped and recorded in
the audit log: a "blood test tomorrow" notice arriving a day late would mislead. Several
missed runs are never sent as a burst; at most the latest one.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3

from apscheduler.triggers.cron import CronTrigger

from . import audit, broadcasts, templates
from .jobs import describe
from .config import Config

log = logging.getLogger(__name__)

MISSED_GRACE = 3600.0
MAX_SCAN = 10_000     # fire times looked at after a long downtime (a minutely cron, a week)


class ScheduleError(ValueError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def trigger(cron: str, config: Config) -> CronTrigger:
    """The crontab line (minute hour day month day_of_week) in the clinic's timezone."""
    try:
        return CronTrigger.from_crontab(cron.strip(), timezone=config.zone)
    except ValueError as exc:
        raise ScheduleError(f"cron {cron!r}: {exc} (five fields: minute hour day month "
                            "day_of_week, e.g. '0 17 * * mon')", field="cron") from None


def add(conn: sqlite3.Connection, config: Config, *, name: str, cron: str, groups: list[str],
        text: str | None = None, template_id: int | None = None, priority: str = "routine",
        actor: str, now: float) -> int:
    """Validate and store a schedule (inside a write transaction)."""
    if not name.strip():
        raise ScheduleError("a schedule needs a name", field="name")
    trigger(cron, config)
    if bool(text and text.strip()) == bool(template_id):
        raise ScheduleError("give a text or a template", field="text")
    if template_id and not conn.execute("SELECT 1 FROM templates WHERE id = ?",
                                        [template_id]).fetchone():
        raise ScheduleError(f"no template with id {template_id}", field="template_id")
    if not groups:
        raise ScheduleError("choose at least one group", field="groups")
    for group in groups:
        if not conn.execute("SELECT 1 FROM groups WHERE name = ?", [group]).fetchone():
            raise ScheduleError(f"no group named {group!r}", field="groups")
    if priority not in broadcasts.PRIORITIES:
        raise ScheduleError(f"priority must be one of {broadcasts.PRIORITIES}", field="priority")
    check_sendable(conn, config, text=text, template_id=template_id)
    schedule_id = conn.execute(
        "INSERT INTO schedules (name, cron, template_id, text, groups, priority, created_by, "
        "created_at) VALUES (?,?,?,?,?,?,?,?)",
        [name.strip(), cron.strip(), template_id, text, json.dumps(groups, ensure_ascii=False),
         priority, actor, now]).lastrowid
    audit.record(conn, actor, "schedule_add", schedule_id=schedule_id, name=name, cron=cron)
    return schedule_id


def check_sendable(conn: sqlite3.Connection, config: Config, *, text: str | None,
                   template_id: int | None) -> None:
    """Refuse a schedule whose text could not be sent when it fires: the sender's own check
    (templates.check_text), with only the values a schedule can fill."""
    if template_id:
        row = conn.execute("SELECT text FROM templates WHERE id = ?", [template_id]).fetchone()
        text, field = (row["text"] if row else ""), "template_id"
    else:
        field = "text"
    try:
        templates.check_text(text or "", clinic=config.clinic_name,
                             supplied=templates.SCHEDULE_SUPPLIES, who="定期送信")
    except templates.TemplateError as exc:
        raise ScheduleError(str(exc), field=field) from None


def set_enabled(conn: sqlite3.Connection, schedule_id: int, enabled: bool, *, actor: str,
                now: float) -> None:
    # Re-enabling starts afresh from now: the runs it missed while disabled were not wanted.
    changed = conn.execute("UPDATE schedules SET enabled = ?, last_run_at = CASE WHEN ? THEN ? "
                           "ELSE last_run_at END WHERE id = ?",
                           [int(enabled), int(enabled), now, schedule_id]).rowcount
    if not changed:
        raise ScheduleError(f"no schedule with id {schedule_id}", field="id")
    audit.record(conn, actor, "schedule_enable" if enabled else "schedule_disable",
                 schedule_id=schedule_id)


def delete(conn: sqlite3.Connection, schedule_id: int, *, actor: str) -> None:
    if not conn.execute("DELETE FROM schedules WHERE id = ?", [schedule_id]).rowcount:
        raise ScheduleError(f"no schedule with id {schedule_id}", field="id")
    audit.record(conn, actor, "schedule_delete", schedule_id=schedule_id)


def listing(conn: sqlite3.Connection, config: Config, now: float) -> list[dict]:
    out = []
    for row in conn.execute("SELECT * FROM schedules ORDER BY id"):
        item = dict(row)
        item["groups"] = json.loads(row["groups"])
        try:
            nxt = trigger(row["cron"], config).get_next_fire_time(
                None, dt.datetime.fromtimestamp(now, config.zone)) if row["enabled"] else None
        except ScheduleError:
            nxt = None  # an unreadable cron (saved by hand) is paused; its error is shown
        item["next_run_at"] = nxt.timestamp() if nxt else None
        out.append(item)
    return out


def _latest_fire(trig: CronTrigger, since: float, now: float, zone) -> tuple[float | None, int]:
    """The latest fire time in (since, now], and how many fire times fell in that span."""
    moment = dt.datetime.fromtimestamp(since, zone) + dt.timedelta(seconds=1)
    latest, count = None, 0
    for _ in range(MAX_SCAN):
        fire = trig.get_next_fire_time(None, moment)
        if fire is None or fire.timestamp() > now:
            break
        latest, count = fire.timestamp(), count + 1
        moment = fire + dt.timedelta(seconds=1)
    return latest, count


def run_due(conn: sqlite3.Connection, config: Config, now: float) -> list[int]:
    """Create the broadcasts of every schedule whose time has come; returns their ids.

    Call inside a write transaction. Idempotent per run (request_key), so a run is never
    sent twice, even if two timers race or the daemon restarts right after. Each schedule
    runs in its own savepoint: one that cannot run (its text refused, its groups empty, a
    bad row) is recorded as failed on its own row — the schedules page, the dashboard and
    `tsunagu check` show it — its run is not retried, and the others run as usual.
    """
    created = []
    for row in conn.execute("SELECT * FROM schedules WHERE enabled = 1").fetchall():
        conn.execute("SAVEPOINT schedule_run")
        try:
            broadcast_id = _run_one(conn, config, row, now)
        except Exception as exc:  # one schedule's failure is its own; the others still run
            conn.execute("ROLLBACK TO schedule_run")
            _failed(conn, config, row, exc, now)
            broadcast_id = None
        conn.execute("RELEASE schedule_run")
        if broadcast_id is not None:
            created.append(broadcast_id)
    return created


def _run_one(conn: sqlite3.Connection, config: Config, row: sqlite3.Row,
             now: float) -> int | None:
    since = row["last_run_at"] or row["created_at"]
    latest, count = _latest_fire(trigger(row["cron"], config), since, now, config.zone)
    if latest is None:
        return None
    conn.execute("UPDATE schedules SET last_run_at = ? WHERE id = ?", [latest, row["id"]])
    late = now - latest
    if count > 1 or late > MISSED_GRACE:
        skipped = count - 1 if late <= MISSED_GRACE else count
        audit.record(conn, "daemon", "schedule_missed", schedule_id=row["id"],
                     name=row["name"], skipped=skipped, late_seconds=round(late))
        if late > MISSED_GRACE:
            log.warning("schedule %s: %d run(s) missed while off; not sent late",
                        row["name"], skipped)
            return None
    try:
        broadcast_id = _fire(conn, config, row, latest, now)
    except Exception as exc:
        # The run is over (last_run_at stays moved on): a text that cannot be sent now will
        # not be sendable in two seconds either. Recorded by run_due.
        raise _RunFailed(latest, exc) from exc
    conn.execute("UPDATE schedules SET failures = 0, last_error = NULL WHERE id = ?",
                 [row["id"]])
    return broadcast_id


class _RunFailed(Exception):
    def __init__(self, run_at: float, cause: Exception) -> None:
        super().__init__(str(cause))
        self.run_at, self.cause = run_at, cause


def _failed(conn: sqlite3.Connection, config: Config, row: sqlite3.Row, exc: Exception,
            now: float) -> None:
    """Record a schedule's failed run on its row (and in the audit log)."""
    if isinstance(exc, _RunFailed):
        error, run_at, enabled = describe(exc.cause), exc.run_at, 1
    else:
        # It could not even tell when it runs (an unreadable cron saved by hand): it would
        # fail the same way every few seconds, so it is paused until staff fix it.
        error, run_at, enabled = describe(exc), row["last_run_at"], 0
    conn.execute("UPDATE schedules SET last_run_at = ?, last_error = ?, last_error_at = ?, "
                 "failures = failures + 1, enabled = ? WHERE id = ?",
                 [run_at, error, now, enabled, row["id"]])
    audit.record(conn, "daemon", "schedule_failed", schedule_id=row["id"], name=row["name"],
                 error=error)
    log.error("schedule %s could not run: %s", row["name"], error)


def failed(conn: sqlite3.Connection) -> list[dict]:
    """Schedules whose last run failed, for the dashboard and `tsunagu check`."""
    return [dict(r) for r in conn.execute(
        "SELECT id, name, last_error, last_error_at, failures, enabled FROM schedules "
        "WHERE failures > 0 ORDER BY id")]


def _fire(conn: sqlite3.Connection, config: Config, row: sqlite3.Row, run_at: float,
          now: float) -> int:
    text = row["text"]
    if row["template_id"]:
        template = conn.execute("SELECT text FROM templates WHERE id = ?",
                                [row["template_id"]]).fetchone()
        text = template["text"] if template else None
    names = json.loads(row["groups"])
    group_ids = [r[0] for r in conn.execute(
        f"SELECT id FROM groups WHERE name IN ({','.join('?' * len(names))})", names)]
    if text is None:
        raise broadcasts.BroadcastError("its template was deleted", field="template_id")
    p = broadcasts.plan(conn, config, text=text, group_ids=group_ids,
                        priority=row["priority"], now=now)
    return broadcasts.create(conn, p, title=row["name"], actor=f"schedule:{row['id']}",
                             now=now, template_id=row["template_id"], schedule_id=row["id"],
                             request_key=f"schedule:{row['id']}:{run_at:.0f}")
