"""/api/v1: the door for the clinic's other systems — the plumbing every operation shares.

- A token in `Authorization: Bearer …` (appliance.api_tokens): none or a revoked one is 401,
  a token without the operation's scope 403, past its requests a minute 429 (Retry-After).
  No session and no CSRF token: a token is not sent by a browser on its own.
- Each operation is declared once with `operation(...)` (method, path, scope, schemas), which
  registers the route, checks the JSON body against its schema and writes the operation into
  /api/v1/openapi.json (webui.api_schema).
- Every error is an RFC 9457 problem (application/problem+json) that names the field.
- A POST with an `Idempotency-Key` is done once: a retry with the same key and the same
  request gets the first answer again; the same key with another request is refused.

The operations themselves (webui.api_views) call the same functions as the web UI and the
CLI: the API is another door, not a second implementation.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from flask import Blueprint, Response, current_app, g, request, session
from werkzeug.exceptions import HTTPException

from appliance import api_tokens, audit
from appliance.db import write

from . import api_schema, db, now

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PROBLEM_BASE = "/api/v1/problems/"
KEY_MAX = 255
TOUCH_EVERY = 60.0       # last_used_at is written at most this often per token
_limiter = api_tokens.RateLimiter()
_touched: dict[int, float] = {}
_touched_lock = threading.Lock()


class ApiProblem(Exception):
    """An error answered as problem details. *errors*: [(field, detail)] or
    [(field, detail, where)], where is 'body' (the default), 'query', 'path' or 'header'."""

    def __init__(self, status: int, kind: str, detail: str, *, field_: str | None = None,
                 where: str = "body", errors: list[tuple] | None = None,
                 headers: dict | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.errors = errors or ([(field_, detail, where)] if field_ is not None else [])
        self.headers = headers or {}
        self.extra = extra


def invalid(field_: str, detail: str, where: str = "body") -> ApiProblem:
    return ApiProblem(422, "validation", detail, field_=field_, where=where)


def pointer(field_: str) -> str:
    """'groups[2]' → '/groups/2' (a JSON pointer into the request body)."""
    return "/" + field_.replace("[", "/").replace("]", "").replace(".", "/") if field_ else ""


def _error(item: tuple) -> dict:
    name, detail, where = (*item, "body")[:3]
    out = {"field": name, "in": where, "detail": detail}
    if where == "body":
        out["pointer"] = pointer(name)
    return out


def problem_response(status: int, kind: str, detail: str, *, errors=(), headers=None,
                     **extra: Any) -> Response:
    title = api_schema.PROBLEM_TYPES.get(kind, ("Error", ""))[0]
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status,
                            "detail": detail, "instance": request.path}
    if errors:
        body["field"] = errors[0][0]
        body["errors"] = [_error(e) for e in errors]
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        content_type="application/problem+json; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def wants_problem() -> bool:
    """Errors under /api/ are answered as problems, not as the staff pages' HTML."""
    return request.path.startswith("/api/v1")


KINDS = {400: "invalid-json", 401: "unauthorized", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 409: "conflict", 413: "too-large",
         415: "unsupported-media-type", 429: "rate-limited"}


def status_problem(code: int, *, headers: dict | None = None) -> Response:
    """The problem for an HTTP error met before any operation (unknown path, wrong method,
    a body over the size limit)."""
    detail = {404: "there is no such path in the API (see /api/v1/openapi.json)",
              405: f"{request.method} is not allowed here",
              413: "the request body is too large",
              400: "the request could not be read"}.get(code, "the request failed")
    return problem_response(code, KINDS.get(code, "server-error"), detail, headers=headers)


def http_problem(exc: HTTPException) -> Response:
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return status_problem(exc.code or 500, headers=headers)


@bp.errorhandler(ApiProblem)
def _api_problem(exc: ApiProblem):
    return problem_response(exc.status, exc.kind, exc.detail, errors=exc.errors,
                            headers=exc.headers, **exc.extra)


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return http_problem(exc)


@bp.errorhandler(Exception)
def _crash(exc: Exception):
    from . import storage_errors
    fault = storage_errors.met(exc) if isinstance(exc, (sqlite3.Error, OSError)) else None
    if fault is not None:
        # Full, read-only or damaged storage: the staff pages answer 503 too (storage_errors).
        return problem_response(503, "storage", f"the appliance's storage refused the work "
                                f"({fault.kind}): {fault.detail}; nothing half-done was kept",
                                headers={"Retry-After": "60"})
    current_app.logger.exception("API request failed: %s %s", request.method, request.path)
    return problem_response(500, "server-error", "the appliance failed to answer; nothing "
                            "half-done was kept (try again)")


# -- operations -----------------------------------------------------------------------------

@dataclass
class Operation:
    name: str
    method: str
    path: str                                   # OpenAPI form: /broadcasts/{broadcast_id}
    scope: str | None
    summary: str
    tag: str
    responses: dict[int, str | None]
    request: str | None = None
    request_required: bool = True
    path_params: dict[str, dict] = field(default_factory=dict)
    query: dict[str, dict] = field(default_factory=dict)
    idempotent: bool = False
    description: str = ""
    reads_patients: bool = False


OPERATIONS: list[Operation] = []
_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def operation(method: str, path: str, *, scope: str | None, summary: str, tag: str,
              responses: dict[int, str | None], request_schema: str | None = None,
              request_required: bool = True, path_params: dict[str, dict] | None = None,
              query: dict[str, dict] | None = None, idempotent: bool = False,
              description: str = "", reads_patients: bool = False) -> Callable:
    """Declare an operation: its route, its checks and its place in the OpenAPI document.
    *reads_patients*: its answer names patients, so each call is recorded as a read (the
    audit log's 'api_read'), as the staff pages' reads are (webui.read_log)."""
    op = Operation(name="", method=method, path=path, scope=scope, summary=summary, tag=tag,
                   responses=responses, request=request_schema,
                   request_required=request_required, path_params=path_params or {},
                   query=query or {}, idempotent=idempotent, description=description,
                   reads_patients=reads_patients)

    def register(view: Callable) -> Callable:
        op.name = view.__name__
        rule = path
        for name, schema in op.path_params.items():
            converter = "int" if schema.get("type") == "integer" else "string"
            rule = rule.replace("{" + name + "}", f"<{converter}:{name}>")
        bp.add_url_rule(rule, view.__name__, _guarded(op, view), methods=[method])
        OPERATIONS.append(op)
        return view
    return register


def _guarded(op: Operation, view: Callable) -> Callable:
    def run(**kwargs):
        g.api_operation = op
        token = _authenticate(op)
        for name, value in kwargs.items():
            _check_value(name, value, op.path_params[name], "path")
        args = _query(op)
        call = dict(kwargs, **args)
        if op.request:
            call["body"] = _body(op)
        if op.idempotent:
            return _in_transaction(token, lambda conn: view(conn=conn, **call))
        answer = _normalise(view(**call))
        if op.reads_patients:
            from .read_log import record_read
            path = request.full_path.rstrip("?")
            record_read("api_read", key=path, who=token.actor, request=path)
        return _json(*answer)
    run.__name__ = view.__name__
    return run


def _authenticate(op: Operation) -> api_tokens.ApiToken | None:
    if op.scope is None:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, presented = header.partition(" ")
    token = api_tokens.authenticate(db().conn, presented.strip()) \
        if scheme.lower() == "bearer" else None
    if token is None:
        raise ApiProblem(401, "unauthorized", "no valid API token: send 'Authorization: "
                         "Bearer <token>' with a token that is not revoked",
                         headers={"WWW-Authenticate": 'Bearer realm="tsunagu"'})
    at = now()
    allowed, left, wait = _limiter.take(token.id, token.rate_per_minute, at)
    g.api_token, g.api_rate = token, (token.rate_per_minute, left)
    if not allowed:
        seconds = max(1, int(wait + 0.999))
        raise ApiProblem(429, "rate-limited", f"more than {token.rate_per_minute} requests a "
                         f"minute: wait {seconds} s", headers={"Retry-After": str(seconds)},
                         retry_after=seconds)
    if not token.allows(op.scope):
        raise ApiProblem(403, "forbidden", f"this token has no '{op.scope}' scope (it has: "
                         f"{', '.join(token.scopes)}); an admin can make one that has",
                         scope=op.scope)
    _touch(token, at)
    return token


def _touch(token: api_tokens.ApiToken, at: float) -> None:
    with _touched_lock:
        if at - _touched.get(token.id, float("-inf")) < TOUCH_EVERY:
            return
        _touched[token.id] = at
    with write(db()) as conn:
        api_tokens.touch(conn, token.id, at)


def token() -> api_tokens.ApiToken:
    return g.api_token


@bp.after_request
def _rate_headers(response: Response) -> Response:
    rate = g.get("api_rate")
    if rate is not None:
        response.headers["RateLimit-Limit"] = str(rate[0])
        response.headers["RateLimit-Remaining"] = str(rate[1])
    response.headers["Cache-Control"] = "no-store"
    # A token, not a cookie, says who calls: never hand the API's clients a session cookie
    # (the staff pages' hooks may have touched the session on the way).
    session.clear()
    session.modified = False
    return response


def _check_value(name: str, value: Any, schema: dict, where: str) -> None:
    try:
        _check_text(value, name)
        jsonschema.Draft202012Validator(schema).validate(value)
    except jsonschema.ValidationError as exc:
        raise invalid(name, f"{name}: {exc.message}", where) from None
    except ApiProblem as exc:
        raise invalid(name, exc.detail, where) from None


def _query(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, schema in op.query.items():
        raw = request.args.get(name)
        if raw is None:
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            try:
                value = int(raw, 10)
            except ValueError:
                raise invalid(name, f"{name} must be a whole number, got {raw!r}",
                              "query") from None
        _check_value(name, value, schema, "query")
        out[name] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body(op: Operation) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        if op.request_required:
            raise invalid("", "the request needs a JSON body")
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiProblem(415, "unsupported-media-type",
                         f"send the body as application/json (got {mimetype or 'no type'})")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiProblem(400, "invalid-json", f"the body is not UTF-8 JSON: {exc}") from None
    _check_text(body, "")
    validator = _VALIDATORS.get(op.request)
    if validator is None:
        validator = _VALIDATORS[op.request] = jsonschema.Draft202012Validator(
            api_schema.component(op.request))
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise ApiProblem(422, "validation", errors[0].message,
                         errors=[(_field(e), e.message) for e in errors[:20]])
    return body


def _field(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator in ("required", "additionalProperties"):
        # The property named in the message is the field to fix.
        names = [p for p in error.message.split("'")[1::2]]
        if names:
            path.append(names[0])
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _check_text(value: Any, where: str) -> None:
    """Refuse what JSON allows but no SMS or database should hold: lone surrogates (not
    Unicode text) and control characters other than tab and line breaks."""
    if isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise invalid(where, f"{where or 'a value'}: not valid Unicode text (a lone "
                          "surrogate)")
        if any((ord(c) < 0x20 and c not in "\t\n\r") or c == "\x7f" for c in value):
            raise invalid(where, f"{where or 'a value'}: contains a control character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, f"{where}[{i}]")


def _normalise(result) -> tuple[Any, int, dict]:
    if isinstance(result, tuple):
        body, status, *rest = result
        return body, status, (rest[0] if rest else {})
    return result, 200, {}


def _json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        content_type="application/json; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# -- Idempotency-Key ------------------------------------------------------------------------

def _in_transaction(tok: api_tokens.ApiToken, view: Callable) -> Response:
    """Run *view(conn)* in one write transaction; with an Idempotency-Key, once per (token,
    key): the answer is kept in the same transaction, and a retry with the same request gets
    it again. What must happen after the commit (the doorbell) is run after it."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= KEY_MAX
                            or not all("!" <= c <= "~" for c in key)):
        raise ApiProblem(400, "validation", "Idempotency-Key: 1 to 255 visible ASCII "
                         "characters (a UUID is usual)", field_="Idempotency-Key",
                         where="header")
    fingerprint = hashlib.sha256(b"\n".join([
        request.method.encode(), request.path.encode(),
        request.get_data(cache=True)])).hexdigest()
    g.api_after_commit = []
    with write(db()) as conn:
        row = None if key is None else conn.execute(
            "SELECT * FROM api_idempotency WHERE token_id = ? AND key = ?",
            [tok.id, key]).fetchone()
        if row is not None:
            if row["fingerprint"] != fingerprint:
                raise ApiProblem(422, "idempotency-key-reused", "this Idempotency-Key was "
                                 "used with a different request; use a new key",
                                 field_="Idempotency-Key", where="header")
            headers = {"Idempotent-Replayed": "true"}
            if row["location"]:
                headers["Location"] = row["location"]
            return _json(json.loads(row["body"]), row["status"], headers)
        body, status, headers = _normalise(view(conn))
        if key is not None:
            conn.execute("INSERT INTO api_idempotency (token_id, key, fingerprint, status, "
                         "body, location, created_at) VALUES (?,?,?,?,?,?,?)",
                         [tok.id, key, fingerprint, status,
                          json.dumps(body, ensure_ascii=False), headers.get("Location"), now()])
    for then in g.api_after_commit:
        then()
    return _json(body, status, headers)


def after_commit(then: Callable[[], None]) -> None:
    """Do *then* once the operation's transaction is committed (ring the daemon)."""
    g.api_after_commit.append(then)


def actor() -> str:
    return token().actor


def record(conn, action: str, **detail: Any) -> None:
    audit.record(conn, actor(), action, request.remote_addr, **detail)
