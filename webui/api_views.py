"""The operations of /api/v1 (declared with webui.api_v1.operation; see its docstring).

Each one calls what the web UI and the CLI call — broadcasts.plan/create/cancel, contacts,
replies, health and check, budget.held_back, reminders — and turns their errors into problem
details that name the field.
"""
from __future__ import annotations

import json

from flask import Response, request, url_for

from appliance import (broadcasts, budget, check, contacts, doorbell, health, reminders,
                       replies, templates, timestamps)

from . import api_schema, db, now, tsunagu_config
from .api_v1 import ApiProblem, actor, after_commit, bp, invalid, operation

STATUS_WORDS = ("ok", "warning", "critical")
BROADCAST_FIELDS = {"text": "text", "groups": "groups", "choices": "choices",
                    "priority": "priority", "phones": "phones", "id": "id",
                    "followup_after_minutes": "followup"}
BROADCAST_ID = {"broadcast_id": api_schema.ID}
PATIENT = {"patient_id": api_schema.PATIENT_ID}
EXTERNAL = {"external_id": api_schema.EXTERNAL_ID}


def _t(at: float | None) -> str | None:
    return timestamps.to_text(at, tsunagu_config().zone)


# -- the document -------------------------------------------------------------------------------

@bp.route("/openapi.json")
def openapi():
    from .api_v1 import OPERATIONS
    return Response(json.dumps(api_schema.document(OPERATIONS), ensure_ascii=False, indent=1),
                    content_type="application/json; charset=utf-8")


@bp.route("/problems/<kind>")
def problem_type(kind: str):
    """What a problem's `type` means (RFC 9457 recommends a readable type URI)."""
    if kind not in api_schema.PROBLEM_TYPES:
        raise ApiProblem(404, "not-found", f"no problem type {kind!r}")
    title, description = api_schema.PROBLEM_TYPES[kind]
    return Response(json.dumps({"type": request.path, "title": title,
                                "description": description}, ensure_ascii=False),
                    content_type="application/json; charset=utf-8")


# -- broadcasts -----------------------------------------------------------------------------

def broadcast_json(conn, broadcast_id: int, *, held: dict | None = None) -> dict:
    held = (budget.held_back(conn, tsunagu_config(), now(), broadcast_id=broadcast_id)
            if held is None else held)
    s = broadcasts.summary(conn, broadcast_id, held=held)
    out = {k: s[k] for k in ("id", "title", "text", "state", "priority", "drill", "created_by",
                             "parent_id", "choices", "tally", "total", "parts", "counts",
                             "acknowledged", "sent", "progress")}
    for key in ("created_at", "scheduled_at", "started_at", "finished_at", "budget_until"):
        out[key] = _t(s[key])
    reminder = conn.execute("SELECT id, external_id FROM reminders WHERE broadcast_id = ?",
                            [broadcast_id]).fetchone()
    out["reminder"] = dict(reminder) if reminder else None
    return out


def _broadcast_or_404(conn, broadcast_id: int) -> None:
    try:
        broadcasts.get(conn, broadcast_id)
    except broadcasts.BroadcastError:
        raise ApiProblem(404, "not-found", f"no broadcast with id {broadcast_id}") from None


@operation("POST", "/broadcasts", scope="send", tag="broadcasts", idempotent=True,
           summary="Plan, check and queue a broadcast (like the confirm page's send button)",
           request_schema="BroadcastRequest", responses={201: "Broadcast"})
def create_broadcast(conn, body: dict):
    config = tsunagu_config()
    text, template_id = body.get("text"), body.get("template_id")
    if bool(text) == bool(template_id):
        raise invalid("text", "give either text or template_id / 本文かテンプレートを指定して"
                      "ください")
    title = body.get("title") or ""
    if template_id:
        template = templates.get_template(db(), template_id)
        if template is None:
            raise invalid("template_id", f"no template with id {template_id}")
        text, title = template.text, title or template.name
    group_ids = _group_ids(conn, body.get("groups") or [], "groups")
    contact_ids = list(body.get("contact_ids") or [])
    for i, patient_id in enumerate(body.get("patient_ids") or []):
        found = contacts.find_by_patient_id(conn, patient_id)
        if found is None:
            raise invalid(f"patient_ids[{i}]", f"no contact with patient ID {patient_id!r}")
        contact_ids.append(found.id)
    scheduled_at = None
    if body.get("send_at"):
        try:
            scheduled_at = timestamps.parse(body["send_at"], config.zone)
        except ValueError as exc:
            raise invalid("send_at", str(exc)) from None
        if scheduled_at <= now():
            raise invalid("send_at", "send_at has passed / 送信時刻が過ぎています")
    followup = body.get("followup") or {}
    try:
        p = broadcasts.plan(conn, config, text=text, group_ids=group_ids,
                            contact_ids=contact_ids, everyone=bool(body.get("everyone")),
                            phones=body.get("phones") or [],
                            priority=body.get("priority", "routine"),
                            drill=bool(body.get("drill")), choices=body.get("choices"),
                            values=body.get("values") or {}, now=now())
        broadcast_id = broadcasts.create(
            conn, p, title=title, actor=actor(), now=now(), template_id=template_id,
            scheduled_at=scheduled_at,
            followup_after_minutes=followup.get("after_minutes"),
            followup_max=followup.get("times", 0))
    except broadcasts.BroadcastError as exc:
        where = BROADCAST_FIELDS.get(exc.field or "", exc.field or "")
        if where == "text" and template_id:
            where = "template_id"
        raise invalid(where, str(exc)) from None
    after_commit(lambda: doorbell.ring(config.database))
    out = broadcast_json(conn, broadcast_id)
    out["warnings"] = p.warnings
    location = url_for("api.get_broadcast", broadcast_id=broadcast_id)
    return out, 201, {"Location": location}


def _group_ids(conn, groups: list, where: str) -> list[int]:
    ids = []
    for i, group in enumerate(groups):
        if isinstance(group, int):
            ids.append(group)
            continue
        found = contacts.get_group_by_name(conn, group)
        if found is None:
            raise invalid(f"{where}[{i}]", f"no group named {group!r} / グループがありません")
        ids.append(found.id)
    return ids


@operation("GET", "/broadcasts/{broadcast_id}", scope="read", tag="broadcasts",
           summary="A broadcast's state and counts (上限待ち: budget_wait)",
           path_params=BROADCAST_ID, responses={200: "Broadcast"})
def get_broadcast(broadcast_id: int):
    conn = db().conn
    _broadcast_or_404(conn, broadcast_id)
    return broadcast_json(conn, broadcast_id)


RECIPIENTS_PAGE = 1000   # a clinic's whole roster in one answer; 10,000 in ten (~300 KB each)


@operation("GET", "/broadcasts/{broadcast_id}/recipients", scope="read", tag="broadcasts",
           summary="Each recipient's state, reason, reply and choice, a page at a time",
           description="In the order they were queued, up to `limit` after the recipient "
                       "`after_id`. While `more` is true, ask again with after_id = the "
                       "`last_id` of this answer.",
           path_params=BROADCAST_ID,
           query={"after_id": {"type": "integer", "minimum": 0, "maximum": 2 ** 62},
                  "limit": {"type": "integer", "minimum": 1, "maximum": RECIPIENTS_PAGE}},
           responses={200: "Recipients"},
           reads_patients=True)
def list_recipients(broadcast_id: int, after_id: int = 0, limit: int = RECIPIENTS_PAGE):
    conn = db().conn
    _broadcast_or_404(conn, broadcast_id)
    held = budget.held_back(conn, tsunagu_config(), now(), broadcast_id=broadcast_id)
    # One more than asked: whether there is a next page, without counting them all.
    people = broadcasts.recipients(conn, broadcast_id, held=held, after_id=after_id,
                                   limit=limit + 1)
    more = len(people) > limit
    people = people[:limit]
    choices = broadcasts.summary(conn, broadcast_id)["choices"]
    patient = contacts.patient_ids(conn, [r["contact_id"] for r in people])
    out = []
    for r in people:
        out.append({
            "id": r["id"], "contact_id": r["contact_id"],
            "patient_id": patient.get(r["contact_id"]), "name": r["name"],
            "phone": r["phone"], "state": r["state"], "reason": r["reason"],
            "parts": r["parts_count"], "attempts": r["attempts"],
            "submitted_at": _t(r["submitted_at"]), "delivered_at": _t(r["delivered_at"]),
            "failed_at": _t(r["failed_at"]), "acknowledged_at": _t(r["acknowledged_at"]),
            "choice": r["choice"],
            "choice_text": choices[r["choice"] - 1]
            if r["choice"] and r["choice"] <= len(choices) else None,
            "reply_text": r["reply_text"], "budget_until": _t(r["budget_until"])})
    return {"broadcast_id": broadcast_id, "recipients": out,
            "last_id": people[-1]["id"] if people else after_id, "more": more}


@operation("POST", "/broadcasts/{broadcast_id}/cancel", scope="send", tag="broadcasts",
           idempotent=True, summary="Stop a broadcast: nothing more is sent",
           path_params=BROADCAST_ID, responses={200: "Cancelled"})
def cancel_broadcast(conn, broadcast_id: int):
    _broadcast_or_404(conn, broadcast_id)
    try:
        cancelled = broadcasts.cancel(conn, broadcast_id, actor=actor(), now=now())
    except broadcasts.BroadcastError as exc:
        raise ApiProblem(409, "conflict", str(exc)) from None
    return {"cancelled": cancelled, "broadcast": broadcast_json(conn, broadcast_id)}


# -- contacts -----------------------------------------------------------------------------

def contact_json(c: contacts.Contact) -> dict:
    return {"id": c.id, "patient_id": c.patient_id, "name": c.name, "kana": c.kana,
            "phone": c.phone, "facility": c.facility, "note": c.note, "active": c.active,
            "groups": list(c.groups), "created_at": _t(c.created_at),
            "updated_at": _t(c.updated_at)}


def _contact_problem(exc: contacts.ContactValidationError) -> ApiProblem:
    errors = [(p.field, f"{p.en} / {p.ja}") for p in exc.problems]
    return ApiProblem(422, "validation", errors[0][1], errors=errors)


@operation("GET", "/contacts/{patient_id}", scope="contacts", tag="contacts",
           summary="A contact by the clinic's patient ID", path_params=PATIENT,
           responses={200: "Contact"},
           reads_patients=True)
def get_contact(patient_id: str):
    found = contacts.find_by_patient_id(db(), patient_id)
    if found is None:
        raise ApiProblem(404, "not-found", f"no contact with patient ID {patient_id!r}")
    return contact_json(found)


@operation("PUT", "/contacts/{patient_id}", scope="contacts", tag="contacts",
           summary="Add or update a contact by the clinic's patient ID, with its groups",
           path_params=PATIENT, request_schema="ContactInput",
           responses={200: "Contact", 201: "Contact"})
def put_contact(patient_id: str, body: dict):
    found = contacts.find_by_patient_id(db(), patient_id)
    fields = {k: body[k] for k in ("name", "phone", "kana", "facility", "note") if k in body}
    group_ids = _group_ids(db().conn, body["groups"], "groups") if "groups" in body else None
    try:
        if found is None:
            made = contacts.add_contact(db(), patient_id=patient_id, actor=actor(),
                                        group_ids=group_ids or [], active=body.get("active", True),
                                        remote_addr=request.remote_addr, **fields)
            return contact_json(made), 201, {
                "Location": url_for("api.get_contact", patient_id=patient_id)}
        if "active" in body:
            fields["active"] = body["active"]
        if group_ids is None:
            changed = contacts.update_contact(db(), found.id, actor=actor(),
                                              remote_addr=request.remote_addr, **fields)
        else:
            changed = contacts.edit_contact(db(), found.id, group_ids=group_ids, actor=actor(),
                                            remote_addr=request.remote_addr, **fields)
    except contacts.ContactValidationError as exc:
        raise _contact_problem(exc) from None
    return contact_json(changed)


# -- inbox and status -------------------------------------------------------------------------

@operation("GET", "/inbox", scope="read", tag="inbox",
           summary="Replies and other SMS received, oldest first, after a cursor",
           description="Poll with after_id = the last_id of the previous answer.",
           query={"after_id": {"type": "integer", "minimum": 0, "maximum": 2 ** 62},
                  "since": api_schema.TIME,
                  "limit": {"type": "integer", "minimum": 1, "maximum": 500}},
           responses={200: "Inbox"},
           reads_patients=True)
def inbox(after_id: int = 0, since: str | None = None, limit: int = 100):
    after = None
    if since is not None:
        try:
            after = timestamps.parse(since, tsunagu_config().zone)
        except ValueError as exc:
            raise invalid("since", str(exc), "query") from None
    rows = replies.since(db().conn, after_id=after_id, after=after, limit=limit)
    messages = [{"id": r["id"], "from": r["number"], "text": r["text"],
                 "received_at": _t(r["received_at"]), "sent_at": _t(r["sent_at"]),
                 "modem": r["modem"], "recipient_id": r["recipient_id"],
                 "broadcast_id": r["broadcast_id"], "contact_id": r["contact_id"],
                 "patient_id": r["patient_id"], "choice": r["choice"],
                 "choice_text": r["choice_text"]} for r in rows]
    return {"messages": messages, "last_id": rows[-1]["id"] if rows else after_id}


@operation("GET", "/status", scope="read", tag="status",
           summary="What `tsunagu check` knows, and each SIM's budget", responses={200: "Status"})
def status():
    config, conn, at = tsunagu_config(), db().conn, now()
    h = health.read_health(conn, config, at)
    results = check.run_checks(conn, config, at)
    return {
        "status": STATUS_WORDS[check.overall(results)], "can_send": h.can_send,
        "daemon_alive": h.daemon_alive, "heartbeat_age": h.heartbeat_age,
        "queue_depth": h.queue_depth, "uncertain": h.uncertain,
        "remaining_budget": h.remaining_budget,
        "budget_blocked_until": _t(h.budget_blocked_until),
        "modems": [{"name": m.name, "ready": m.ready, "reason": m.reason, "detail": m.detail,
                    "signal_bars": m.signal_bars, "signal_dbm": m.signal_dbm,
                    "operator": m.operator, "pace_per_minute": m.pace,
                    "daily_limit": m.daily_limit, "sent_today": m.sent_today,
                    "remaining": m.remaining, "checked_at": _t(m.checked_at)}
                   for m in h.modems],
        "checks": [{"name": r.name, "status": STATUS_WORDS[r.status], "message": r.message}
                   for r in results]}


# -- reminders ----------------------------------------------------------------------------------

def reminder_json(conn, reminder_id: int, change: str | None = None) -> dict:
    r = reminders.get(conn, tsunagu_config(), reminder_id, now())
    reply = None
    if r["acknowledged_at"] or r["choice"]:
        reply = {"choice": r["choice"], "choice_text": r["choice_text"], "text": r["reply_text"]}
    out = {"id": r["id"], "external_id": r["external_id"], "contact_id": r["contact_id"],
           "patient_id": r["patient_id"], "kind": r["kind_name"],
           "appointment_at": _t(r["appointment_at"]), "state": r["state"],
           "reason": r["reason"], "planned_at": _t(r["planned_at"]),
           "sent_at": _t(r["sent_at"]), "broadcast_id": r["broadcast_id"], "reply": reply}
    if change:
        out["change"] = change
    return out


def _reminder_or_404(conn, external_id: str):
    row = reminders.by_external_id(conn, external_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no reminder with appointment ID {external_id!r}")
    return row


@operation("GET", "/reminders/{external_id}", scope="reminders", tag="reminders",
           summary="A reminder by the clinic's appointment ID: its state and the reply",
           path_params=EXTERNAL, responses={200: "Reminder"},
           reads_patients=True)
def get_reminder(external_id: str):
    conn = db().conn
    return reminder_json(conn, _reminder_or_404(conn, external_id)["id"])


def _whom(conn, body: dict) -> contacts.Contact:
    found: dict[str, contacts.Contact | None] = {}
    if "patient_id" in body:
        found["patient_id"] = contacts.find_by_patient_id(conn, body["patient_id"])
    if "contact_id" in body:
        found["contact_id"] = contacts.get_contact(conn, body["contact_id"])
    if "phone" in body:
        found["phone"] = contacts.find_by_phone(conn, body["phone"])
    if not found:
        raise invalid("patient_id", "say whom: patient_id, contact_id or phone")
    for where, contact in found.items():
        if contact is None:
            raise invalid(where, f"no contact with this {where.replace('_', ' ')}")
    ids = {c.id for c in found.values()}
    if len(ids) > 1:
        raise invalid(next(iter(found)), "patient_id, contact_id and phone name different "
                      "contacts")
    contact = next(iter(found.values()))
    if not contact.active:
        raise invalid(next(iter(found)), f"contact #{contact.id} is deactivated / 送信停止中です")
    return contact


@operation("PUT", "/reminders/{external_id}", scope="reminders", tag="reminders",
           summary="Add, move or cancel an appointment's reminder",
           description="A moved appointment whose reminder was not sent yet is sent with the "
                       "new time only; one already sent is sent again with the new time. "
                       "status: cancelled withdraws it.",
           path_params=EXTERNAL, request_schema="ReminderInput",
           responses={200: "Reminder", 201: "Reminder"})
def put_reminder(external_id: str, body: dict):
    from appliance.db import write
    config = tsunagu_config()
    with write(db()) as conn:
        kind = reminders.kind_by_name(conn, body["kind"])
        if kind is None:
            names = ", ".join(k.name for k in reminders.kinds(conn)) or "none yet"
            raise invalid("kind", f"no reminder kind {body['kind']!r} (kinds: {names})")
        contact = _whom(conn, body)
        try:
            at = timestamps.parse(body["at"], config.zone)
        except ValueError as exc:
            raise invalid("at", str(exc)) from None
        cancelled = body.get("status") == "cancelled"
        existing = reminders.by_external_id(conn, external_id)
        if cancelled and existing is not None:
            change = reminders.withdraw(conn, existing["id"], actor=actor(), now=now())
            return reminder_json(conn, existing["id"], change.action)
        if at <= now() and not cancelled:
            raise invalid("at", "the appointment has passed / 予約日時が過ぎています")
        change = reminders.upsert(conn, contact_id=contact.id, kind_id=kind.id,
                                  appointment_at=at, actor=actor(), now=now(), source="api",
                                  external_id=external_id, existing=existing)
        action = change.action
        if cancelled:
            action = reminders.withdraw(conn, change.reminder_id, actor=actor(),
                                        now=now()).action
        out = reminder_json(conn, change.reminder_id, action)
    if change.action == "new":
        return out, 201, {"Location": url_for("api.get_reminder", external_id=external_id)}
    return out


@operation("DELETE", "/reminders/{external_id}", scope="reminders", tag="reminders",
           summary="Withdraw an appointment's reminder (the appointment is cancelled)",
           path_params=EXTERNAL, responses={200: "Reminder"})
def delete_reminder(external_id: str):
    from appliance.db import write
    with write(db()) as conn:
        row = _reminder_or_404(conn, external_id)
        change = reminders.withdraw(conn, row["id"], actor=actor(), now=now())
        return reminder_json(conn, row["id"], change.action)

