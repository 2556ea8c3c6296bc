"""The API's JSON schemas and the OpenAPI 3.1 document built from the code.

Every operation of /api/v1 is declared once, with `webui.api_v1.operation(...)`: its method,
path, scope, request schema and responses. The same declaration registers the Flask route,
validates the request body (jsonschema, draft 2020-12 — the dialect of OpenAPI 3.1) and
writes the operation into /api/v1/openapi.json, so the document cannot drift from what the
code accepts. What the code answers is checked against it by the property-based test
(schemathesis) in tests/test_api_schemathesis.py.
"""
from __future__ import annotations

from typing import Any

from appliance import api_tokens, broadcasts, reminders, webhooks

VERSION = "1.0.0"


def _nullable(kind: str, **extra: Any) -> dict:
    return {"type": [kind, "null"], **extra}


TIME = {"type": "string", "format": "date-time",
        "description": "RFC 3339 with the offset, e.g. 2027-01-15T17:00:00+09:00; a time "
                       "without an offset is the clinic's local time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
STATES = ["queued", "budget_wait", "sending", "submitted", "delivered", "failed", "uncertain",
          "cancelled"]
TEXT_MAX = 2000
ID = {"type": "integer", "minimum": 1, "maximum": 2 ** 62}
PATIENT_ID = {"type": "string", "minLength": 1, "maxLength": 32}
EXTERNAL_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^/\s]+$"}

SCHEMAS: dict[str, dict] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details. `field` names the request field at fault "
                       "(the first one); `errors` lists each with a JSON pointer.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "instance": {"type": "string"}, "field": {"type": "string"},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["field", "in", "detail"],
                "properties": {"field": {"type": "string"},
                               "in": {"enum": ["body", "query", "path", "header"]},
                               "pointer": {"type": "string",
                                           "description": "JSON pointer into the body"},
                               "detail": {"type": "string"}}}},
            "scope": {"type": "string"}, "retry_after": {"type": "number"},
        },
    },
    "BroadcastRequest": {
        "type": "object", "additionalProperties": False,
        "description": "Give `text` or `template_id`, and whom: `groups` (ids or names), "
                       "`contact_ids`, `patient_ids`, `phones` or `everyone`. The same checks "
                       "as the web UI's confirm page (placeholders, length, budget) apply.",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": TEXT_MAX},
            "template_id": ID,
            "title": {"type": "string", "maxLength": 80},
            "groups": {"type": "array", "maxItems": 100, "items": {"oneOf": [
                ID, {"type": "string", "minLength": 1, "maxLength": 50}]}},
            "contact_ids": {"type": "array", "maxItems": 5000, "items": ID},
            "patient_ids": {"type": "array", "maxItems": 5000, "items": PATIENT_ID},
            "phones": {"type": "array", "maxItems": 5000,
                       "items": {"type": "string", "minLength": 1, "maxLength": 40}},
            "everyone": {"type": "boolean"},
            "priority": {"enum": list(broadcasts.PRIORITIES)},
            "drill": {"type": "boolean",
                      "description": "a drill goes to the test group only"},
            "choices": {"type": "array", "maxItems": broadcasts.MAX_CHOICES,
                        "items": {"type": "string", "minLength": 1, "maxLength": 40}},
            "values": {"type": "object", "additionalProperties": False,
                       "description": "what fills {date}, {time} and {original_time}",
                       "properties": {k: {"type": "string", "maxLength": 40}
                                      for k in ("date", "time", "original_time")}},
            "send_at": TIME,
            "followup": {"type": "object", "additionalProperties": False,
                         "required": ["after_minutes", "times"],
                         "description": "resend to those who have not replied",
                         "properties": {
                             "after_minutes": {"type": "integer", "minimum": 1,
                                               "maximum": 1440},
                             "times": {"type": "integer", "minimum": 1, "maximum": 5}}},
        },
    },
    "Counts": {"type": "object", "required": STATES,
               "properties": {s: {"type": "integer"} for s in STATES}},
    "Broadcast": {
        "type": "object",
        "required": ["id", "title", "state", "priority", "drill", "total", "counts",
                     "acknowledged", "progress", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "title": {"type": "string"}, "text": {"type": "string"},
            "state": {"enum": ["scheduled", "queued", "sending", "done", "cancelled"]},
            "priority": {"enum": list(broadcasts.PRIORITIES)}, "drill": {"type": "boolean"},
            "created_by": {"type": "string"}, "created_at": TIME,
            "scheduled_at": TIME_OR_NULL, "started_at": TIME_OR_NULL,
            "finished_at": TIME_OR_NULL, "parent_id": _nullable("integer"),
            "choices": {"type": "array", "items": {"type": "string"}},
            "tally": {"type": "object", "additionalProperties": {"type": "integer"}},
            "total": {"type": "integer"}, "parts": {"type": "integer"},
            "counts": {"$ref": "#/components/schemas/Counts"},
            "acknowledged": {"type": "integer"}, "sent": {"type": "integer"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "budget_until": {**TIME_OR_NULL, "description": "when the daily limits let the "
                             "first message held back (上限待ち) go"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "reminder": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ReminderRef"}]},
        },
    },
    "Cancelled": {"type": "object", "required": ["cancelled", "broadcast"], "properties": {
        "cancelled": {"type": "integer", "description": "messages not sent"},
        "broadcast": {"$ref": "#/components/schemas/Broadcast"}}},
    "Recipient": {
        "type": "object", "required": ["id", "state", "phone"],
        "properties": {
            "id": {"type": "integer"}, "contact_id": _nullable("integer"),
            "patient_id": _nullable("string"), "name": {"type": "string"},
            "phone": {"type": "string"}, "state": {"enum": STATES},
            "reason": _nullable("string"), "parts": {"type": "integer"},
            "attempts": {"type": "integer"}, "submitted_at": TIME_OR_NULL,
            "delivered_at": TIME_OR_NULL, "failed_at": TIME_OR_NULL,
            "acknowledged_at": TIME_OR_NULL, "choice": _nullable("integer"),
            "choice_text": _nullable("string"), "reply_text": _nullable("string"),
            "budget_until": TIME_OR_NULL,
        },
    },
    "Recipients": {
        "type": "object", "required": ["broadcast_id", "recipients", "last_id", "more"],
        "properties": {
            "broadcast_id": {"type": "integer"},
            "recipients": {"type": "array", "items": {"$ref": "#/components/schemas/Recipient"}},
            "last_id": {"type": "integer", "description": "the after_id of the next page"},
            "more": {"type": "boolean", "description": "whether recipients follow this page"}}},
    "ContactInput": {
        "type": "object", "additionalProperties": False, "required": ["name", "phone"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "kana": {"type": "string", "maxLength": 100},
            "phone": {"type": "string", "minLength": 1, "maxLength": 40},
            "facility": {"type": "string", "maxLength": 50},
            "note": {"type": "string", "maxLength": 500},
            "active": {"type": "boolean"},
            "groups": {"type": "array", "maxItems": 50, "description": "group names; they "
                       "replace the contact's groups (its facility group follows `facility`)",
                       "items": {"type": "string", "minLength": 1, "maxLength": 50}},
        },
    },
    "Contact": {
        "type": "object", "required": ["id", "patient_id", "name", "phone", "active", "groups"],
        "properties": {
            "id": {"type": "integer"}, "patient_id": _nullable("string"),
            "name": {"type": "string"}, "kana": {"type": "string"},
            "phone": {"type": "string", "description": "E.164"},
            "facility": {"type": "string"}, "note": {"type": "string"},
            "active": {"type": "boolean"},
            "groups": {"type": "array", "items": {"type": "string"}},
            "created_at": TIME, "updated_at": TIME,
        },
    },
    "InboxMessage": {
        "type": "object", "required": ["id", "from", "text", "received_at"],
        "properties": {
            "id": {"type": "integer"}, "from": {"type": "string"}, "text": {"type": "string"},
            "received_at": TIME, "sent_at": TIME_OR_NULL, "modem": {"type": "string"},
            "recipient_id": _nullable("integer"), "broadcast_id": _nullable("integer"),
            "contact_id": _nullable("integer"), "patient_id": _nullable("string"),
            "choice": _nullable("integer"), "choice_text": _nullable("string"),
        },
    },
    "Inbox": {"type": "object", "required": ["messages", "last_id"], "properties": {
        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/InboxMessage"}},
        "last_id": {"type": "integer", "description": "pass as after_id next time"}}},
    "Modem": {
        "type": "object", "required": ["name", "ready", "daily_limit", "sent_today",
                                       "remaining"],
        "properties": {
            "name": {"type": "string"}, "ready": {"type": "boolean"},
            "reason": _nullable("string"), "detail": _nullable("string"),
            "signal_bars": _nullable("integer"), "signal_dbm": _nullable("integer"),
            "operator": _nullable("string"), "pace_per_minute": {"type": "integer"},
            "daily_limit": {"type": "integer"}, "sent_today": {"type": "integer"},
            "remaining": {"type": "integer", "description": "SMS parts this SIM may still "
                          "send in the current 24 hours"},
            "checked_at": TIME_OR_NULL,
        },
    },
    "Status": {
        "type": "object",
        "required": ["status", "can_send", "daemon_alive", "queue_depth", "modems", "checks"],
        "properties": {
            "status": {"enum": ["ok", "warning", "critical"]},
            "can_send": {"type": "boolean"}, "daemon_alive": {"type": "boolean"},
            "heartbeat_age": _nullable("number"), "queue_depth": {"type": "integer"},
            "uncertain": {"type": "integer"}, "remaining_budget": {"type": "integer"},
            "budget_blocked_until": TIME_OR_NULL,
            "modems": {"type": "array", "items": {"$ref": "#/components/schemas/Modem"}},
            "checks": {"type": "array", "items": {
                "type": "object", "required": ["name", "status", "message"],
                "properties": {"name": {"type": "string"},
                               "status": {"enum": ["ok", "warning", "critical"]},
                               "message": {"type": "string"}}}},
        },
    },
    "ReminderInput": {
        "type": "object", "additionalProperties": False, "required": ["kind", "at"],
        "description": "Whom: `patient_id`, `contact_id` or `phone` (a contact's number).",
        "properties": {
            "patient_id": PATIENT_ID, "contact_id": ID,
            "phone": {"type": "string", "minLength": 1, "maxLength": 40},
            "kind": {"type": "string", "minLength": 1, "maxLength": reminders.NAME_MAX,
                     "description": "a reminder kind's name (透析予約, 採血…)"},
            "at": TIME,
            "status": {"enum": ["booked", "cancelled"],
                       "description": "cancelled withdraws the reminder"},
        },
    },
    "ReminderRef": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "external_id": _nullable("string")}},
    "Reminder": {
        "type": "object",
        "required": ["id", "external_id", "kind", "appointment_at", "state", "contact_id"],
        "properties": {
            "id": {"type": "integer"}, "external_id": _nullable("string"),
            "contact_id": {"type": "integer"}, "patient_id": _nullable("string"),
            "kind": {"type": "string"}, "appointment_at": TIME,
            "state": {"enum": list(reminders.STATES)}, "reason": _nullable("string"),
            "planned_at": {**TIME_OR_NULL, "description": "when it goes (pending only)"},
            "sent_at": TIME_OR_NULL, "broadcast_id": _nullable("integer"),
            "reply": {"oneOf": [{"type": "null"}, {
                "type": "object", "properties": {"choice": _nullable("integer"),
                                                 "choice_text": _nullable("string"),
                                                 "text": _nullable("string")}}]},
            "change": {"enum": ["new", "changed", "unchanged", "reopened", "withdrawn"]},
        },
    },
    "WebhookEvent": {
        "type": "object", "required": ["id", "type", "occurred_at", "data"],
        "description": "The body POSTed to a token's webhook (see README, Integrating).",
        "properties": {"id": {"type": "integer"}, "type": {"enum": list(webhooks.EVENTS)},
                       "occurred_at": TIME, "data": {"type": "object"}},
    },
}

PROBLEM_TYPES = {
    "unauthorized": ("No valid token", "Send `Authorization: Bearer <token>`; an admin makes "
                     "tokens on the API page or with `tsunagu api-token add`."),
    "forbidden": ("The token lacks the scope", "The token's scopes do not include the one "
                  "this operation needs (`scope`)."),
    "invalid-json": ("The body is not JSON", "The body could not be read as UTF-8 JSON."),
    "unsupported-media-type": ("Send JSON", "Send the body as application/json."),
    "validation": ("The request has a problem", "A field is missing or wrong; `field` and "
                   "`errors` name it. Nothing was done."),
    "not-found": ("Not found", "There is no such resource or path."),
    "method-not-allowed": ("Method not allowed", "The path exists but not with this method."),
    "conflict": ("Conflict", "The resource is in a state that does not allow this (a "
                 "finished broadcast cannot be cancelled)."),
    "idempotency-key-reused": ("Idempotency-Key reused", "The key was used before with a "
                               "different request. Use a new key for a new request."),
    "rate-limited": ("Too many requests", "The token's requests a minute are used up; "
                     "wait `retry_after` seconds (the Retry-After header)."),
    "too-large": ("Body too large", "The request body is larger than the appliance accepts."),
    "storage": ("Storage fault", "The appliance's storage is full, read-only or damaged: "
                "nothing was done. The dashboard says what to do; try again later."),
    "server-error": ("Internal error", "The appliance failed to answer; nothing half-done "
                     "was kept. Try again; tell the administrator if it goes on."),
}


def problem_responses() -> dict:
    problem = {"content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    return {"4XX": {"description": "RFC 9457 problem details", **problem},
            "503": {"description": "the appliance's storage is full, read-only or damaged",
                    **problem}}


def document(operations: list) -> dict:
    """The OpenAPI 3.1 document for the registered *operations* (webui.api_v1.Operation)."""
    paths: dict[str, dict] = {}
    for op in operations:
        item: dict[str, Any] = {
            "operationId": op.name, "summary": op.summary, "tags": [op.tag],
            "responses": {**{str(code): _response(code, schema)
                             for code, schema in op.responses.items()},
                          **problem_responses()},
        }
        if op.description:
            item["description"] = op.description
        if op.scope:
            item["security"] = [{"bearer": []}]
            item["description"] = (item.get("description", "") +
                                   f"\n\nScope: `{op.scope}`.").strip()
        else:
            item["security"] = []
        parameters = [{"name": name, "in": "path", "required": True, "schema": schema}
                      for name, schema in op.path_params.items()]
        parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in op.query.items()]
        if op.idempotent:
            parameters.append({
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "A retry with the same key gets the first answer again "
                               "(header Idempotent-Replayed: true) instead of doing it twice.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                           "pattern": "^[!-~]+$"}})
        if parameters:
            item["parameters"] = parameters
        if op.request:
            item["requestBody"] = {"required": op.request_required, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{op.request}"}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tsunagu API", "version": VERSION,
                 "description": "The appliance's API for the clinic's other systems, on the "
                                "clinic LAN. Errors are RFC 9457 problem details. Scopes: "
                                + "; ".join(f"`{s}` — {h}" for s, h in
                                            api_tokens.SCOPE_HELP.items()) + "."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token made by an admin"}},
        },
        "webhooks": {event: {"post": {
            "summary": f"{event}", "requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/WebhookEvent"}}}},
            "responses": {"200": {"description": "any 2xx: delivered"}}}}
            for event in webhooks.EVENTS},
    }


def _response(code: int, schema: str | None) -> dict:
    if schema is None:
        return {"description": "no content"}
    return {"description": "OK" if code < 300 else "", "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def component(name: str) -> dict:
    """A schema with its $refs resolvable (for validating a request body on its own)."""
    return {**SCHEMAS[name], "$defs": {}, "components": {"schemas": SCHEMAS}}
