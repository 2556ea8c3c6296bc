"""One's own account: change the password, set up or remove the second factor, new
recovery codes. Every change here ends the account's other sessions."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from appliance import staff_phones, two_factor, users

from . import db, now, tsunagu_config
from .auth import CodeForm, _enrol_page, actor, remote, staff_required
from .phone_views import ActionForm

bp = Blueprint("account", __name__, url_prefix="/account")


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    repeat = PasswordField(_l("New password again"),
                           validators=[DataRequired(), EqualTo("password", _l(
                               "The two new passwords differ."))])


class ConfirmForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired()])


def _keep_this_session(user: users.User) -> None:
    # The change bumped the session version: the others end, this one carries the new one.
    session["sv"] = user.session_version


def _own() -> users.User:
    if current_user.is_emergency:
        abort(403)  # the break-glass session sends; it has no account to change
    return current_user.user


def _page(password_form=None, confirm=None):
    user = users.get_user_by_id(db(), _own().id)
    return render_template(
        "account.html", user=user, password_form=password_form or PasswordForm(formdata=None),
        confirm=confirm or ConfirmForm(formdata=None),
        required=two_factor.required(tsunagu_config().web.two_factor, user.role),
        codes_left=two_factor.recovery_codes_left(db(), user.id) if user.two_factor else 0,
        phones=staff_phones.for_user(db(), user.id), action=ActionForm())


@bp.route("")
@staff_required
def index():
    return _page()


@bp.route("/password", methods=["POST"])
@staff_required
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            user = users.change_own_password(db(), _own().id, form.current.data,
                                             form.password.data, remote_addr=remote())
        except users.UserError as exc:
            field = getattr(form, exc.field or "password", form.password)
            field.errors = list(field.errors or []) + [str(exc)]
        else:
            _keep_this_session(user)
            flash(_("Your password has been changed. Other devices have been logged out."), "ok")
            return redirect(url_for("account.index"))
    return _page(password_form=form), 200


@bp.route("/two-factor", methods=["GET", "POST"])
@staff_required
def enrol():
    user = _own()
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.confirm_enrolment(db(), user.id, form.code.data, now=now(),
                                                 actor=actor(), remote_addr=remote())
        except users.UserError as exc:
            form.code.errors = [str(exc)]
        else:
            return render_template("recovery_codes.html", codes=codes,
                                   next_url=url_for("account.index"))
        return _enrol_page(user, form, two_factor.pending_key(db(), user.id),
                           url_for("account.enrol"))
    return _enrol_page(user, form, None, url_for("account.enrol"))


def _confirmed(form: ConfirmForm) -> bool:
    if not form.validate_on_submit():
        return False
    try:
        users.verify_login(db(), _own().username, form.password.data, now=now(),
                           remote_addr=remote())
    except users.LoginRefused as refused:
        form.password.errors = [refused.message(session.get("lang") or "ja")]
        return False
    return True


@bp.route("/two-factor/remove", methods=["POST"])
@staff_required
def remove():
    user = _own()
    if two_factor.required(tsunagu_config().web.two_factor, user.role):
        abort(403)
    form = ConfirmForm()
    if not _confirmed(form):
        return _page(confirm=form), 200
    two_factor.disable(db(), user.id, actor=actor(), action="two_factor_disable",
                       remote_addr=remote())
    _keep_this_session(users.get_user_by_id(db(), user.id))
    flash(_("Two-step verification is off."), "ok")
    return redirect(url_for("account.index"))


@bp.route("/recovery-codes", methods=["POST"])
@staff_required
def recovery_codes():
    user = _own()
    form = ConfirmForm()
    if not _confirmed(form):
        return _page(confirm=form), 200
    try:
        codes = two_factor.new_recovery_codes(db(), user.id, now=now(), actor=actor(),
                                              remote_addr=remote())
    except users.UserError:
        abort(400)
    return render_template("recovery_codes.html", codes=codes, next_url=url_for("account.index"))
