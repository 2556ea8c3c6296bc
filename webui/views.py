"""The dashboard, its live status feed, the live character counter and /metrics."""
from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, render_template, request
from flask_login import current_user

from appliance import (broadcasts, check, etws, health, metrics, modem_link, sms_commands,
                       templates, timekeeping, wording)
from modem import pdu

from . import db, lang, now, tsunagu_config
from .auth import staff_required

bp = Blueprint("views", __name__)


def _status() -> dict:
    config = tsunagu_config()
    conn = db().conn
    h = health.read_health(conn, config, now())
    # The answers to staff phones go within seconds and are not the clinic's broadcasts:
    # the phone commands list says what was asked and answered.
    active = [broadcasts.summary(conn, r[0]) for r in conn.execute(
        "SELECT id FROM broadcasts b WHERE state IN ('queued', 'sending') AND "
        f"{broadcasts.NOT_A_PHONE_REPLY} ORDER BY id DESC")]
    return {"health": h, "active": active, "last_check": check.last_run(conn),
            "alerts": check.check_jobs(conn, config, _lang()),
            "time_source": timekeeping.read_status(conn),
            "recovery": {m.name: modem_link.latest(conn, m.name) for m in config.modems},
            "warnings": etws.open_events(conn, config, now()),
            "last_warning": etws.latest(conn),
            "phone_commands": sms_commands.recent(conn, now())}


@bp.route("/")
@staff_required
def dashboard():
    return render_template("dashboard.html", **_status(), security=_security(),
                           reasons=check.REASON_TEXT.get(_lang(), check.REASON_TEXT["ja"]),
                           warning_types=wording.words(wording.WARNING_TYPES, _lang()),
                           sms_reasons=wording.words(wording.SMS_REASONS, _lang()),
                           sms_commands=wording.words(wording.SMS_COMMANDS, _lang()))


def _security() -> dict | None:
    """For admins: failed logins by device and emergency logins of the last day."""
    if not current_user.is_admin:
        return None
    from appliance import emergency, login_throttle

    from .auth import throttle_policy
    day_ago = now() - 24 * 3600
    return {"attempts": login_throttle.recent(db().conn, throttle_policy(), now()),
            "emergency_uses": emergency.uses(db(), day_ago),
            "emergency_left": emergency.unused(db())}


def _lang() -> str:
    from flask_babel import get_locale
    return str(get_locale() or "ja")


@bp.route("/test", methods=["POST"])
@staff_required
def send_test():
    """The hardware button's twin: the test message to the test group."""
    from flask import flash, redirect, url_for
    from flask_babel import gettext as _

    from appliance import doorbell
    from appliance.db import write

    from .auth import actor
    try:
        with write(db()) as conn:
            broadcast_id = broadcasts.create_test_broadcast(conn, tsunagu_config(), actor=actor(),
                                                            now=now())
    except broadcasts.BroadcastError as exc:
        flash(wording.error_text(exc, lang()), "error")
        return redirect(url_for("views.dashboard"))
    doorbell.ring(tsunagu_config().database)
    flash(_("Test message queued."), "ok")
    return redirect(url_for("broadcasts.detail", broadcast_id=broadcast_id))


@bp.route("/check", methods=["POST"])
@staff_required
def run_check():
    """The readiness check from the dashboard (what the timer runs), recorded like any run."""
    from flask import flash, redirect, url_for
    from flask_babel import gettext as _
    results = check.run_checks(db(), tsunagu_config(), now())
    check.record(db(), results, now=now(), live=False)
    status = check.overall(results)
    flash([_("Check: OK"), _("Check: warning"), _("Check: critical")][status],
          ["ok", "warn", "error"][status])
    return redirect(url_for("views.dashboard"))


@bp.route("/api/status")
@staff_required
def api_status():
    status = _status()
    h = status["health"]
    return jsonify({
        "can_send": h.can_send, "daemon_alive": h.daemon_alive,
        "storage_fault": h.storage_fault.kind if h.storage_fault else None,
        "heartbeat_age": h.heartbeat_age, "queue_depth": h.queue_depth,
        "modems": [{"name": m.name, "ready": m.ready, "reason": m.reason,
                    "bars": m.signal_bars, "remaining": m.remaining} for m in h.modems],
        "active": [{"id": a["id"], "progress": a["progress"], "counts": a["counts"],
                    "state": a["state"]} for a in status["active"]]})


@bp.route("/api/count", methods=["POST"])
@staff_required
def api_count():
    """The counter the compose page shows: the same function the sender splits with."""
    data = request.get_json(silent=True) or {}
    text, choices = data.get("text", ""), data.get("choices", "")
    if not isinstance(text, str) or not isinstance(choices, str) or len(text) + len(choices) > 5000:
        abort(400)
    clinic = tsunagu_config().clinic_name
    try:
        # Count what a patient receives: placeholders filled (long sample values) and the
        # reply choices appended, exactly as the sender will build it.
        block = broadcasts.choices_block(broadcasts.parse_choices(choices))
        counted_text = templates.render(text, clinic=clinic, **{
            ("contact_name" if k == "name" else k): v for k, v in templates.SAMPLE_VALUES.items()})
        show = templates.schedule_preview if data.get("for") == "schedule" \
            else templates.preview
        sample = show(text, clinic=clinic) + block
    except (templates.TemplateError, broadcasts.BroadcastError) as exc:
        return jsonify({"error": wording.error_text(exc, lang())})
    counted = pdu.count(counted_text + block)
    return jsonify({"chars": counted.chars, "parts": counted.parts,
                    "encoding": counted.encoding, "too_long": counted.parts > pdu.MAX_PARTS,
                    "remaining": counted.remaining, "sample": sample})


@bp.route("/metrics")
def metrics_endpoint():
    # For a scraper on the Pi itself, or a logged-in admin; the LAN at large sees nothing.
    if request.remote_addr not in ("127.0.0.1", "::1") and not (
            current_user.is_authenticated and current_user.is_admin):
        abort(403)
    body = metrics.render(lambda: db().conn, tsunagu_config(), now)
    return Response(body, content_type=metrics.CONTENT_TYPE)
