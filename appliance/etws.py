"""Earthquake and tsunami warnings from the cellular network (ETWS), and what staff do next.

A modem subscribed to ETWS (modem.device.subscribe_warnings) hands each warning to its
worker as a cell broadcast (modem.cbs.Broadcast); `record()` keeps it. A warning of a type
staff act on ([etws] types) opens an event, or joins the one opened within [etws]
event_hours: one event, one banner on the dashboard, one sound of the buzzer (the panel),
one prompt, one broadcast. Others (the test message 4355, unless chosen) are kept and
shown, so staff can see that warnings reach the appliance at all.

As 安否確認 services do, staff are not asked at once: after [etws] prompt_after_minutes
(`run_due()`, a daemon job) each on-call staff phone gets an SMS with the prepared draft
and its own one-time code (appliance.sms_commands.prompt); the first to answer sends it —
the same broadcast as the web UI's draft (one request key), so it can go only once. Nothing
is sent to patients without a person's answer, unless an admin has put the warning's type
in [etws] auto_send; then the draft is sent at the prompt's time and the staff are told.
"""
from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from dataclasses import dataclass

from . import audit, broadcasts, sms_commands, staff_phones, templates, wording
from .config import Config

log = logging.getLogger(__name__)

ACTOR = "daemon"


@dataclass(frozen=True)
class Draft:
    """The prepared broadcast of an event, or why there is none (*problem*)."""
    args: dict | None            # as sms_commands keeps them (text, groups, priority…)
    template: templates.Template | None
    plan: broadcasts.Plan | None
    problem: str | None = None   # Japanese, for the banner and the staff SMS

    @property
    def groups(self) -> list[int]:
        return (self.args or {}).get("group_ids") or []


def request_key(event_id: int) -> str:
    """The event's broadcast's request key: every door that sends it sends the same one."""
    return f"warning:{event_id}"


def record(conn: sqlite3.Connection, config: Config, modem: str, warning, now: float
           ) -> int | None:
    """Keep a cell broadcast (inside the caller's write transaction); returns its row id,
    None when it is not an ETWS warning. A repeat (same message id and serial number,
    within the event window) only counts; a page that came late completes the text."""
    kind = warning.warning_type
    if kind is None:
        return None
    window = config.etws.event_hours * 3600
    same = conn.execute("SELECT id, complete FROM warnings WHERE message_id = ? AND serial = ? "
                        "AND received_at > ? ORDER BY id DESC LIMIT 1",
                        [warning.message_id, warning.serial, now - window]).fetchone()
    if same is not None:
        conn.execute("UPDATE warnings SET repeats = repeats + 1, text = CASE WHEN ? AND NOT "
                     "complete THEN ? ELSE text END, complete = max(complete, ?) WHERE id = ?",
                     [int(warning.complete), warning.text, int(warning.complete), same["id"]])
        return same["id"]
    event_id = None
    if kind in config.etws.types:
        event_id = _event_for(conn, config, kind, now)
    warning_id = conn.execute(
        "INSERT INTO warnings (event_id, modem, message_id, serial, warning_type, text, "
        "complete, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [event_id, modem, warning.message_id, warning.serial, kind, warning.text,
         int(warning.complete), now]).lastrowid
    audit.record(conn, ACTOR, "warning_received", warning_type=kind, modem=modem,
                 event_id=event_id, message_id=warning.message_id)
    log.warning("%s: %s received (%s)%s", modem, kind, warning.text[:60].replace("\n", " "),
                f", event {event_id}" if event_id else "")
    return warning_id


def _event_for(conn: sqlite3.Connection, config: Config, kind: str, now: float) -> int:
    window = config.etws.event_hours * 3600
    row = conn.execute("SELECT id FROM warning_events WHERE first_at > ? ORDER BY id DESC "
                       "LIMIT 1", [now - window]).fetchone()
    if row is not None:
        conn.execute("UPDATE warning_events SET last_at = ?, warning_type = ? WHERE id = ?",
                     [now, kind, row["id"]])
        return row["id"]
    return conn.execute(
        "INSERT INTO warning_events (warning_type, first_at, last_at, prompt_at, auto_send) "
        "VALUES (?, ?, ?, ?, ?)", [kind, now, now, now + 60 * config.etws.prompt_after_minutes,
                                   int(kind in config.etws.auto_send)]).lastrowid


# -- the draft ---------------------------------------------------------------------------------

def draft(conn: sqlite3.Connection, config: Config, now: float) -> Draft:
    """The broadcast prepared for a warning: [etws] template to [etws] groups (or the
    template's own), planned as any broadcast is."""
    name = config.etws.template
    template = templates.get_template_by_name(conn, name) if name else None
    if template is None:
        return Draft(None, None, None, problem=(
            f"テンプレート「{name}」がありません。テンプレートの画面で作るか、設定の "
            "[etws] template を直してください" if name else "[etws] template が空です"))
    if config.etws.groups:
        known = {r["name"]: r["id"] for r in conn.execute("SELECT id, name FROM groups")}
        missing = [g for g in config.etws.groups if g not in known]
        if missing:
            return Draft(None, template, None, problem=f"グループ「{'、'.join(missing)}」が"
                         "ありません（設定の [etws] groups）")
        group_ids = [known[g] for g in config.etws.groups]
    else:
        group_ids = list(template.group_ids)
    args = {"text": template.text, "template_id": template.id, "title": template.name,
            "priority": "emergency", "choices": list(template.choices), "group_ids": group_ids}
    try:
        plan = broadcasts.plan(conn, config, text=template.text, group_ids=group_ids,
                               priority="emergency", choices=args["choices"] or None, now=now)
    except broadcasts.BroadcastError as exc:
        return Draft(args, template, None, problem=exc.ja or str(exc))
    return Draft(args, template, plan)


# -- the daemon's job ------------------------------------------------------------------------

def run_due(conn: sqlite3.Connection, config: Config, now: float) -> list[int]:
    """Prompt the on-call staff (or send, for an [etws] auto_send type) for each event
    whose time has come (inside the caller's write transaction); the broadcasts queued."""
    queued: list[int] = []
    for event in conn.execute("SELECT * FROM warning_events WHERE prompted_at IS NULL AND "
                              "prompt_at <= ? AND closed_at IS NULL AND broadcast_id IS NULL",
                              [now]).fetchall():
        queued += _prompt_event(conn, config, event, now)
    return queued


def _prompt_event(conn: sqlite3.Connection, config: Config, event: sqlite3.Row,
                  now: float) -> list[int]:
    prepared = draft(conn, config, now)
    name = type_name(event["warning_type"], "ja")
    at = dt.datetime.fromtimestamp(event["first_at"], config.zone).strftime("%H:%M")
    phones = staff_phones.on_call(conn)
    clinic = config.clinic_name
    queued: list[int] = []
    if prepared.plan is None:
        message = (f"【{clinic}】{name}を受信しました（{at}）。送信の下書きを作れません: "
                   f"{prepared.problem}。画面かSMSの「送信 …」で送ってください。")
        detail = prepared.problem
    elif event["auto_send"]:
        broadcast_id = broadcasts.create(conn, prepared.plan, title=prepared.args["title"],
                                         actor=ACTOR, now=now, request_key=request_key(
                                             event["id"]),
                                         template_id=prepared.args["template_id"])
        sent(conn, event["id"], broadcast_id)
        audit.record(conn, ACTOR, "warning_auto_send", event_id=event["id"],
                     broadcast_id=broadcast_id, people=prepared.plan.people)
        queued.append(broadcast_id)
        message = (f"【{clinic}】{name}を受信しました（{at}）。設定により {prepared.template.name} を"
                   f"{prepared.plan.people}名に自動で送り始めました（#{broadcast_id}）。止めるときは"
                   f"「中止 {broadcast_id} 暗証番号」。")
        detail = f"auto #{broadcast_id}"
    else:
        groups = sms_commands.group_names(conn, prepared.args)
        message = (f"【{clinic}】{name}を受信しました（{at}）。{prepared.template.name} を "
                   f"{groups}（{prepared.plan.people}名）に送る場合は "
                   f"{config.sms_commands.code_minutes:g}分以内に {{code}} と返信してください。"
                   f"\n「{sms_commands.preview_text(prepared.plan)}」")
        detail = None
    for staff in phones:
        if prepared.plan is not None and not event["auto_send"]:
            sms_commands.prompt(conn, config, staff, args=prepared.args,
                                request_key=request_key(event["id"]), event_id=event["id"],
                                message=message, now=now)
        else:
            sms_commands.tell(conn, config, staff.phone, message, actor=ACTOR, now=now)
    told = "、".join(p.username for p in phones) or "-"
    detail = f"{detail + ' / ' if detail else ''}SMS: {told}" if phones else \
        f"{detail + ' / ' if detail else ''}当番の携帯が登録されていません"
    conn.execute("UPDATE warning_events SET prompted_at = ?, prompt_detail = ? WHERE id = ?",
                 [now, detail, event["id"]])
    audit.record(conn, ACTOR, "warning_prompt", event_id=event["id"], phones=len(phones),
                 problem=prepared.problem)
    return queued


# -- what staff do -------------------------------------------------------------------------------

def send_draft(conn: sqlite3.Connection, config: Config, event_id: int, *, actor: str,
               now: float) -> int:
    """The web UI's button: send the event's draft (inside the caller's write transaction).
    The same request key as the phones' codes, so whichever door comes first sends it and
    the other finds it sent."""
    event = conn.execute("SELECT * FROM warning_events WHERE id = ?", [event_id]).fetchone()
    if event is None:
        raise broadcasts.BroadcastError(f"no warning {event_id}", field="id",
                                        ja="この速報はありません")
    if event["broadcast_id"] is not None:
        return event["broadcast_id"]
    prepared = draft(conn, config, now)
    if prepared.plan is None:
        raise broadcasts.BroadcastError(prepared.problem or "no draft", field="template",
                                        ja=prepared.problem)
    broadcast_id = broadcasts.create(conn, prepared.plan, title=prepared.args["title"],
                                     actor=actor, now=now, request_key=request_key(event_id),
                                     template_id=prepared.args["template_id"])
    sent(conn, event_id, broadcast_id)
    return broadcast_id


def sent(conn: sqlite3.Connection, event_id: int, broadcast_id: int) -> None:
    """The event's broadcast went (from a code, the web UI's draft, or auto_send): the
    other phones' codes are void."""
    conn.execute("UPDATE warning_events SET broadcast_id = coalesce(broadcast_id, ?) "
                 "WHERE id = ?", [broadcast_id, event_id])
    conn.execute("UPDATE sms_confirmations SET state = 'superseded' WHERE event_id = ? AND "
                 "state = 'pending'", [event_id])


def close(conn: sqlite3.Connection, event_id: int, *, actor: str, now: float) -> None:
    """Staff: nothing (more) to send for this event; its banner goes, its codes are void."""
    row = conn.execute("SELECT id FROM warning_events WHERE id = ? AND closed_at IS NULL",
                       [event_id]).fetchone()
    if row is None:
        raise broadcasts.BroadcastError(f"no open warning {event_id}", field="id",
                                        ja="この警報はもう閉じられています")
    conn.execute("UPDATE warning_events SET closed_at = ?, closed_by = ? WHERE id = ?",
                 [now, actor, event_id])
    conn.execute("UPDATE sms_confirmations SET state = 'superseded' WHERE event_id = ? AND "
                 "state = 'pending'", [event_id])
    audit.record(conn, actor, "warning_closed", event_id=event_id)


# -- what the dashboard shows ------------------------------------------------------------------

def open_events(conn: sqlite3.Connection, config: Config, now: float) -> list[dict]:
    """Events not closed and younger than the event window, newest first, with their
    warnings and broadcast."""
    out = []
    for event in conn.execute("SELECT * FROM warning_events WHERE closed_at IS NULL AND "
                              "first_at > ? ORDER BY id DESC",
                              [now - config.etws.event_hours * 3600]).fetchall():
        item = dict(event)
        item["warnings"] = [dict(w) for w in conn.execute(
            "SELECT * FROM warnings WHERE event_id = ? ORDER BY id", [event["id"]])]
        item["name"] = type_name(event["warning_type"], "ja")
        out.append(item)
    return out


def latest(conn: sqlite3.Connection) -> dict | None:
    """The last warning of any type (the test message 4355 too): proof they reach us."""
    row = conn.execute("SELECT * FROM warnings ORDER BY id DESC LIMIT 1").fetchone()
    return dict(row) if row else None


def type_name(kind: str, lang: str) -> str:
    return wording.word(wording.WARNING_TYPES, kind, lang)
