"""Logging in and out, who may open what, and the session timeout."""
from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from appliance import audit, users

from . import db, now, tsunagu_config

bp = Blueprint("auth", __name__)


class WebUser:
    """A users row as Flask-Login wants it."""

    def __init__(self, user: users.User) -> None:
        self.user = user
        self.id, self.username, self.role, self.locale = user.id, user.username, user.role, user.locale

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.user.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        return str(self.id)


def load_user(user_id: str) -> WebUser | None:
    user = users.get_user_by_id(db(), int(user_id))
    return WebUser(user) if user and user.active else None


def actor() -> str:
    return current_user.username


def remote() -> str | None:
    return request.remote_addr


def staff_required(view):
    """Any logged-in account (staff, and admins, who can do what staff do)."""
    return login_required(view)


def admin_required(view):
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return wrapper


@bp.before_app_request
def session_timeout():
    """Log out after the configured idle time, checked on the server, not by the cookie."""
    if not current_user.is_authenticated:
        return None
    limit = tsunagu_config().web.session_timeout_minutes * 60
    seen = session.get("seen")
    if seen is not None and now() - seen > limit:
        logout_user()
        session.clear()
        return redirect(url_for("auth.login", expired=1, next=request.path))
    session["seen"] = now()
    return None


def safe_next(target: str | None) -> str:
    """*target* when it is a path on this site, else the dashboard: never an open redirect.

    Browsers drop tabs and line breaks inside a URL and read a backslash as a slash, so a
    "/", a tab, then "/evil.example/" would leave the site; any such character, a scheme or
    a host sends to the dashboard instead (and a CR/LF never reaches a header).
    """
    target = target or ""
    unsafe = any(c == "\\" or c.isspace() or not c.isprintable() for c in target)
    parts = urlsplit(target)
    if unsafe or not target.startswith("/") or target.startswith("//") or parts.scheme \
            or parts.netloc:
        return url_for("views.dashboard")
    return target


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        web = tsunagu_config().web
        try:
            user = users.verify_login(db(), form.username.data, form.password.data, now=now(),
                                      max_failed=web.max_failed_logins,
                                      lockout_minutes=web.lockout_minutes,
                                      remote_addr=remote())
        except users.LoginRefused as refused:
            error = refused.message(session.get("lang") or "ja")
        else:
            chosen = session.get("lang")
            session.clear()  # a fresh session at login: no fixation
            session.permanent = True  # clear() dropped it: the cookie expires with the timeout
            if chosen in ("ja", "en") and chosen != user.locale:
                # Picked on the login page: that is this person's language from now on.
                user = users.set_locale(db(), user.username, chosen, actor=user.username)
            login_user(WebUser(user))
            session["seen"] = now()
            session["lang"] = user.locale
            return redirect(safe_next(request.args.get("next")))
    expired = request.args.get("expired")
    return render_template("login.html", form=form, error=error, expired=expired)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    with_db = db()
    audit.record(with_db, actor(), "logout", remote())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
@login_required
def language():
    chosen = request.form.get("lang")
    if chosen not in ("ja", "en"):
        abort(400)
    users.set_locale(db(), current_user.username, chosen, actor=actor())
    session["lang"] = chosen
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url)
                    else url_for("views.dashboard"))
