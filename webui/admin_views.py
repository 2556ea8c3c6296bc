"""Admin pages: user accounts, the audit log and the settings (read from the config file)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice as C
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from appliance import audit, check, users

from . import db, now, page_arg, tsunagu_config
from .auth import actor, admin_required, remote

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_PAGE = 100  # entries per page of the audit log, newest first


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=32)])
    role = SelectField(_l("Role"), choices=[C("staff", _l("Staff")), C("admin", _l("Admin"))])
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
                                                actor=actor())
        except users.UserError as exc:
            field = getattr(form, exc.field or "username", form.username)
            field.errors = list(field.errors or []) + [str(exc)]
        else:
            created = (user.username, generated)
            form = UserForm(formdata=None)
    return render_template("users.html", form=form, users=users.list_users(db()),
                           created=created, action=UserActionForm(), now=now())


@bp.route("/users/<username>/<action>", methods=["POST"])
@admin_required
def user_action(username: str, action: str):
    if not UserActionForm().validate_on_submit():
        abort(400)
    try:
        if action == "unlock":
            users.unlock(db(), username, actor=actor(), remote_addr=remote())
        elif action == "deactivate":
            users.deactivate(db(), username, actor=actor(), remote_addr=remote())
        elif action == "activate":
            users.activate(db(), username, actor=actor(), remote_addr=remote())
        elif action in ("staff", "admin"):
            users.set_role(db(), username, action, actor=actor(), remote_addr=remote())
        elif action == "reset":
            password = users.generate_password()
            users.set_password(db(), username, password, actor=actor())
            flash(_("New password for %(user)s: %(pw)s (shown once)", user=username,
                    pw=password), "ok")
            return redirect(url_for("admin.users_page"))
        else:
            abort(404)
    except users.UserError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Done."), "ok")
    return redirect(url_for("admin.users_page"))


@bp.route("/audit")
@admin_required
def audit_page():
    page = page_arg()
    action = request.args.get("action") or None
    entries = audit.entries(db(), limit=AUDIT_PAGE, offset=(page - 1) * AUDIT_PAGE, action=action)
    total = audit.count(db(), action=action)
    return render_template("audit.html", entries=entries, page=page, total=total, action=action,
                           per_page=AUDIT_PAGE)


@bp.route("/settings")
@admin_required
def settings():
    return render_template("settings.html", config=tsunagu_config(),
                           last_check=check.last_run(db().conn))
