"""Beyond the LAN, in the web UI: staff phones (one's own on the account page, everyone's on
the users page for admins), the draft broadcast after an earthquake or tsunami warning, and
whether a broadcast rings its silent recipients. Every change goes through the functions
the CLI and the SMS commands use (appliance.staff_phones, etws, broadcasts)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from appliance import (broadcasts, doorbell, etws, sms_commands, staff_phones, users,
                       wording)
from appliance.db import write

from . import db, lang, now, tsunagu_config
from .auth import actor, admin_required, remote, staff_required

bp = Blueprint("phones", __name__)


class ActionForm(FlaskForm):
    """A button that changes something: only its CSRF token."""


def _back() -> str:
    target = request.form.get("back", "")
    return url_for("admin.users_page") if target == "users" else url_for("account.index")


def _own_or_admin(phone_id: int) -> staff_phones.StaffPhone:
    found = staff_phones.get(db(), phone_id)
    if found is None:
        abort(404)
    if current_user.is_emergency or (found.user_id != current_user.user.id
                                     and not current_user.is_admin):
        abort(403)
    return found


def _error(exc: Exception) -> None:
    flash(wording.error_text(exc, lang()), "error")


# -- staff phones -------------------------------------------------------------------------------

@bp.route("/account/phones", methods=["POST"])
@staff_required
def add_own():
    """Register one's own phone: the account's password too, as a stolen session alone must
    not give SMS commands to another number."""
    if current_user.is_emergency or not ActionForm().validate_on_submit():
        abort(400)
    user = current_user.user
    try:
        users.verify_login(db(), user.username, request.form.get("password", ""), now=now(),
                           remote_addr=remote())
    except users.LoginRefused as refused:
        flash(refused.message(session.get("lang") or "ja"), "error")
        return redirect(url_for("account.index"))
    return _add(user.id, url_for("account.index"))


@bp.route("/admin/phones", methods=["POST"])
@admin_required
def add_for_user():
    if not ActionForm().validate_on_submit():
        abort(400)
    return _add(request.form.get("username", ""), url_for("admin.users_page"))


def _add(who, back: str):
    try:
        staff_phones.add(db(), who, request.form.get("phone", ""), request.form.get("pin", ""),
                         actor=actor(), on_call=bool(request.form.get("on_call")), now=now(),
                         remote_addr=remote())
    except users.UserError as exc:
        _error(exc)
    else:
        flash(_("The phone is registered. Send ヘルプ from it to see the commands."), "ok")
    return redirect(back)


@bp.route("/phones/<int:phone_id>/<action>", methods=["POST"])
@staff_required
def phone_action(phone_id: int, action: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    found = _own_or_admin(phone_id)
    try:
        if action == "remove":
            staff_phones.remove(db(), found.id, actor=actor(), remote_addr=remote())
        elif action in ("on_call", "off_call"):
            staff_phones.set_on_call(db(), found.id, action == "on_call", actor=actor(),
                                     now=now(), remote_addr=remote())
        elif action == "pin":
            staff_phones.set_pin(db(), found.id, request.form.get("pin", ""), actor=actor(),
                                 now=now(), remote_addr=remote())
        elif action == "enable" and current_user.is_admin:
            staff_phones.enable(db(), found.id, actor=actor(), now=now(), remote_addr=remote())
        else:
            abort(404)
    except users.UserError as exc:
        _error(exc)
    else:
        flash(_("Done."), "ok")
    return redirect(_back())


# -- a warning's draft ---------------------------------------------------------------------------

@bp.route("/warnings/<int:event_id>")
@staff_required
def warning(event_id: int):
    conn = db().conn
    event = conn.execute("SELECT * FROM warning_events WHERE id = ?", [event_id]).fetchone()
    if event is None:
        abort(404)
    config = tsunagu_config()
    prepared = etws.draft(conn, config, now())
    return render_template(
        "warning.html", event=event, name=etws.type_name(event["warning_type"], lang()),
        warnings=[dict(w) for w in conn.execute(
            "SELECT * FROM warnings WHERE event_id = ? ORDER BY id", [event_id])],
        draft=prepared, groups=sms_commands.group_names(conn, prepared.args or {}),
        preview=sms_commands.preview_text(prepared.plan) if prepared.plan else None,
        action=ActionForm())


@bp.route("/warnings/<int:event_id>/send", methods=["POST"])
@staff_required
def send_warning_draft(event_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with write(db()) as conn:
            broadcast_id = etws.send_draft(conn, tsunagu_config(), event_id, actor=actor(),
                                           now=now())
    except broadcasts.BroadcastError as exc:
        _error(exc)
        return redirect(url_for("phones.warning", event_id=event_id))
    doorbell.ring(tsunagu_config().database)
    flash(_("Sending has begun."), "ok")
    return redirect(url_for("broadcasts.detail", broadcast_id=broadcast_id))


@bp.route("/warnings/<int:event_id>/close", methods=["POST"])
@staff_required
def close_warning(event_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with write(db()) as conn:
            etws.close(conn, event_id, actor=actor(), now=now())
    except broadcasts.BroadcastError as exc:
        _error(exc)
    return redirect(url_for("views.dashboard"))


# -- ringing ---------------------------------------------------------------------------------

@bp.route("/broadcasts/<int:broadcast_id>/ring/<value>", methods=["POST"])
@staff_required
def set_ring(broadcast_id: int, value: str):
    if value not in ("on", "off") or not ActionForm().validate_on_submit():
        abort(400)
    try:
        with write(db()) as conn:
            broadcasts.set_ring(conn, broadcast_id, value == "on", actor=actor(),
                                remote_addr=remote())
    except broadcasts.BroadcastError as exc:
        _error(exc)
    return redirect(url_for("broadcasts.detail", broadcast_id=broadcast_id))
