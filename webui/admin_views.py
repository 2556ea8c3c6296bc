"""Admin pages: user accounts, the audit log and the settings (read from the config file)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice as C
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from appliance import audit, check, login_throttle, staff_phones, two_factor, users, wording

from . import db, lang, now, page_arg, tsunagu_config
from .auth import actor, admin_required, remote

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_PAGE = 100  # entries per page of the audit log, newest first


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=32)])
    role = SelectField(_l("Role"), choices=[C("staff", _l("Staff")), C("office", _l("Office")),
                                            C("admin", _l("Admin"))])
    password = PasswordField(_l("Password (empty: generate one)"), validators=[Optional()])


class UserActionForm(FlaskForm):
    pass


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users_page():
    form = UserForm()
    created = None
    if form.validate_on_submit():
        try:
            user, generated = users.create_user(db(), form.username.data, form.role.data,
                                                password=form.password.data or None,
                                                actor=actor(), remote_addr=remote())
        except users.UserError as exc:
            field = getattr(form, exc.field or "username", form.username)
            field.errors = list(field.errors or []) + [wording.error_text(exc, lang())]
        else:
            created = (user.username, generated)
            form = UserForm(formdata=None)
    return _users(form=form, created=created)


def _users(**shown):
    shown.setdefault("form", UserForm(formdata=None))
    return render_template("users.html", users=users.list_users(db()), action=UserActionForm(),
                           now=now(), phones=staff_phones.all_phones(db()), **shown)


ROLE_ACTIONS = ("admin", "office", "staff")


@bp.route("/users/<int:user_id>/<action>", methods=["POST"])
@admin_required
def user_action(user_id: int, action: str):
    if not UserActionForm().validate_on_submit():
        abort(400)
    target = users.get_user_by_id(db(), user_id)
    if target is None or target.username == users.EMERGENCY_USER:
        abort(404)
    try:
        if action == "deactivate":
            users.deactivate(db(), user_id, actor=actor(), remote_addr=remote())
        elif action == "activate":
            users.activate(db(), user_id, actor=actor(), remote_addr=remote())
        elif action in ROLE_ACTIONS:
            users.set_role(db(), user_id, action, actor=actor(), remote_addr=remote())
        elif action == "reset":
            password = users.generate_password()
            users.set_password(db(), user_id, password, actor=actor(), remote_addr=remote())
            # Shown in this response only (no-store), large and once: never in a flash,
            # which lives in the session cookie that anyone holding it can read.
            return _users(reset=(target.username, password))
        elif action == "reset_2fa":
            two_factor.disable(db(), user_id, actor=actor(), action="two_factor_reset",
                               remote_addr=remote())
        else:
            abort(404)
    except users.UserError as exc:
        flash(wording.error_text(exc, lang()), "error")
    else:
        flash(_("Done."), "ok")
    return redirect(url_for("admin.users_page"))


@bp.route("/login-attempts/clear", methods=["POST"])
@admin_required
def clear_throttle():
    """Let a device that is made to wait try again now (e.g. a nurse who mistyped)."""
    address = request.form.get("address", "")
    if not UserActionForm().validate_on_submit() or not address or len(address) > 64:
        abort(400)
    login_throttle.clear(db(), address, now=now(), actor=actor(), remote_addr=remote())
    flash(_("Done."), "ok")
    return redirect(url_for("views.dashboard"))


@bp.route("/audit")
@admin_required
def audit_page():
    page = page_arg()
    action = request.args.get("action") or None
    entries = audit.entries(db(), limit=AUDIT_PAGE, offset=(page - 1) * AUDIT_PAGE, action=action)
    total = audit.count(db(), action=action)
    # Every action the log holds, and every one we have a name for, to pick from.
    actions = sorted(set(audit.actions(db())) | set(wording.AUDIT_ACTIONS),
                     key=lambda a: wording.audit_action(a, lang()))
    return render_template("audit.html", entries=entries, page=page, total=total, action=action,
                           per_page=AUDIT_PAGE, actions=actions, zone=tsunagu_config().zone)


@bp.route("/audit/export.csv")
@admin_required
def audit_export():
    """The whole log as CSV with each row's chain hash, for an inspector."""
    from flask import Response
    data = audit.export_csv(db(), tsunagu_config().zone)
    audit.record(db(), actor(), "audit_export", remote(), rows=audit.count(db()))
    return Response(data, content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": "attachment; filename=tsunagu-audit.csv"})


@bp.route("/settings")
@admin_required
def settings():
    return render_template("settings.html", config=tsunagu_config(),
                           last_check=check.last_run(db().conn))
