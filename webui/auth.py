"""Logging in and out (password, second factor, emergency code), who may open what, the
session version and the idle timeout."""
from __future__ import annotations

import functools
import logging
import sqlite3
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from appliance import emergency, login_throttle, two_factor, users
from appliance.read_only_login import ReadOnlyLogins

from . import db, now, tsunagu_config

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

BACKGROUND_HEADER = "X-Tsunagu-Background"
PENDING_SECONDS = 5 * 60   # between the password and the second factor


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

    @property
    def is_emergency(self) -> bool:
        return self.username == users.EMERGENCY_USER

    @property
    def may_manage_roster(self) -> bool:
        return self.role in tsunagu_config().web.roster_roles and not self.is_emergency

    def get_id(self) -> str:
        return str(self.id)


def load_user(user_id: str) -> WebUser | None:
    """The session's user, only while the session carries the account's current version."""
    user = users.get_user_by_id(db(), int(user_id))
    if user is None or not user.active or session.get("sv") != user.session_version:
        return None
    return WebUser(user)


def actor() -> str:
    return current_user.username


def remote() -> str | None:
    return request.remote_addr


def throttle_policy() -> login_throttle.Policy:
    web = tsunagu_config().web
    return login_throttle.Policy(free=web.max_failed_logins, longest_wait=web.lockout_minutes * 60,
                                 global_failures=web.global_failed_logins)


def staff_required(view):
    """Any logged-in account (staff, and admins, who can do what staff do)."""
    return login_required(view)


def _requiring(allowed):
    """A decorator: logged in, and *allowed(current_user)*, else 403."""
    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not allowed(current_user):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


admin_required = _requiring(lambda user: user.is_admin)
# Importing and exporting the whole roster: the roles in [web] roster_roles.
roster_required = _requiring(lambda user: user.may_manage_roster)


def background() -> bool:
    """A request the page makes by itself (live status, the dashboard's refresh): it is
    not a person using the appliance, so it does not keep the session alive."""
    return request.headers.get(BACKGROUND_HEADER) == "1" or request.args.get("auto") == "1"


@bp.before_app_request
def session_timeout():
    """Log out after the configured idle time, checked on the server, not by the cookie."""
    if not current_user.is_authenticated:
        return None
    limit = tsunagu_config().web.session_timeout_minutes * 60
    seen = session.get("seen")
    if seen is None or now() - seen > limit:
        logout_user()
        session.clear()
        if request.path.startswith("/api/"):
            abort(401)
        return redirect(url_for("auth.login", expired=1,
                                next=None if background() else request.full_path.rstrip("?")))
    if not background():
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


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)])


class EmergencyForm(FlaskForm):
    code = StringField(_l("Emergency code"), validators=[DataRequired(), Length(max=60)])


def _language() -> str:
    return session.get("lang") or "ja"


def _read_only_logins(exc: BaseException) -> ReadOnlyLogins:
    """The storage refused a login's writes (*exc*): the logins this process keeps itself
    while that lasts (appliance.read_only_login). Any other error is raised again, and so
    is a full disk that has just been given its reserve back (the storage page says to try
    again, and the next try is an ordinary login)."""
    from . import storage_errors
    if storage_errors.met(exc) is None or g.get("reserve_released"):
        raise exc
    g.read_only_login = True
    return current_app.extensions.setdefault("tsunagu_read_only_logins", ReadOnlyLogins())


def _finish_login(user: users.User, method: str):
    """The one way into a session: a fresh session (no fixation) with the account's
    current version, the language kept, back to where the person was going."""
    chosen = session.get("lang")
    target = session.get("pending", {}).get("next")
    session.clear()
    session.permanent = True  # clear() dropped it: the cookie expires with the timeout
    if g.get("read_only_login"):
        # Nothing can be written: the login is kept in this process (and the journal).
        current_app.extensions["tsunagu_read_only_logins"].logged_in(
            user, method=method, now=now(), remote_addr=remote())
        chosen = user.locale if chosen not in ("ja", "en") else chosen
    elif chosen in ("ja", "en") and chosen != user.locale and method != "emergency":
        # Picked on the login page: that is this person's language from now on.
        user = users.set_locale(db(), user.id, chosen, actor=user.username)
    if method != "emergency" and not g.get("read_only_login"):
        user = users.logged_in(db(), user.id, method=method, now=now(), remote_addr=remote())
    login_user(WebUser(user))
    session["sv"] = user.session_version
    session["seen"] = now()
    session["lang"] = chosen if (method == "emergency" or g.get("read_only_login")) and chosen \
        else user.locale
    return redirect(safe_next(target))


def _pending() -> users.User | None:
    """The account whose password was right and whose second factor is awaited."""
    pending = session.get("pending")
    if not pending or now() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop("pending", None)
        return None
    user = users.get_user_by_id(db(), pending["uid"])
    if user is None or not user.active or user.session_version != pending.get("sv"):
        session.pop("pending", None)
        return None
    return user


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            try:
                user = users.verify_login(db(), form.username.data, form.password.data,
                                          now=now(), throttle=throttle_policy(),
                                          remote_addr=remote())
            except (sqlite3.Error, OSError) as exc:
                user = _read_only_logins(exc).verify_password(
                    db().conn, form.username.data, form.password.data, now=now(),
                    throttle=throttle_policy(), remote_addr=remote())
            mode = tsunagu_config().web.two_factor
            if g.get("read_only_login") and not user.two_factor and \
                    two_factor.required(mode, user.role):
                raise users.LoginRefused("read_only_enrol")
        except users.LoginRefused as refused:
            error = refused.message(_language())
        else:
            if not user.two_factor and not two_factor.required(mode, user.role):
                session["pending"] = {"next": request.args.get("next")}
                return _finish_login(user, "password")
            session["pending"] = {"uid": user.id, "sv": user.session_version, "at": now(),
                                  "next": request.args.get("next")}
            return redirect(url_for("auth.login_code" if user.two_factor
                                    else "auth.login_enrol"))
    expired = request.args.get("expired")
    return render_template("login.html", form=form, error=error, expired=expired,
                           logged_out=request.args.get("logged_out"))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    user = _pending()
    if user is None:
        return redirect(url_for("auth.login"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            try:
                method = two_factor.verify(db(), user.id, form.code.data, now=now(),
                                           remote_addr=remote(), throttle=throttle_policy())
            except (sqlite3.Error, OSError) as exc:
                method = _read_only_logins(exc).verify_code(
                    db().conn, user, form.code.data, now=now(), throttle=throttle_policy(),
                    remote_addr=remote())
        except users.LoginRefused as refused:
            error = refused.message(_language())
        else:
            return _finish_login(user, method)
    return render_template("login_code.html", form=form, error=error)


@bp.route("/login/enrol", methods=["GET", "POST"])
def login_enrol():
    """An account that must have a second factor and has none sets it up before it is in."""
    user = _pending()
    if user is None or user.two_factor:
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.confirm_enrolment(db(), user.id, form.code.data, now=now(),
                                                 actor=user.username, remote_addr=remote())
        except users.UserError as exc:
            form.code.errors = [str(exc)]
        else:
            response = _finish_login(users.get_user_by_id(db(), user.id), "totp_enrolment")
            return render_template("recovery_codes.html", codes=codes,
                                   next_url=response.location)
    key = two_factor.pending_key(db(), user.id) if request.method == "POST" else None
    return _enrol_page(user, form, key, url_for("auth.login_enrol"))


def _enrol_page(user: users.User, form: CodeForm, key: str | None, action: str):
    key = key or two_factor.start_enrolment(db(), user.id)
    uri = two_factor.provisioning_uri(key, user.username, tsunagu_config().clinic_name)
    return render_template("two_factor_enrol.html", form=form, qr=two_factor.qr_svg_data_uri(uri),
                           key=two_factor.display_key(key), action=action)


@bp.route("/login/emergency", methods=["GET", "POST"])
def login_emergency():
    form = EmergencyForm()
    error = None
    if form.validate_on_submit():
        try:
            user = emergency.log_in(db(), form.code.data, now=now(), remote_addr=remote())
        except users.LoginRefused:
            error = _l("This emergency code is not valid or has been used.")
        except (sqlite3.Error, OSError) as exc:
            _read_only_logins(exc)   # a code's use must be recorded before it lets anyone in
            error = users.LoginRefused("read_only_emergency").message(_language())
        else:
            session["pending"] = {}
            return _finish_login(user, "emergency")
    return render_template("login_emergency.html", form=form, error=error)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    # Every session of the account ends, not only this cookie: a copy stops working too.
    try:
        users.end_sessions(db(), current_user.id, actor=actor(), remote_addr=remote())
    except (sqlite3.Error, OSError) as exc:
        from . import storage_errors
        if storage_errors.met(exc) is None:
            raise
        # The storage refuses writes: this browser is logged out all the same (a shared
        # tablet must be); other copies of the session end when the card is replaced.
        log.warning("logout of %s from %s not in the audit log (the storage refuses "
                    "writes)", actor(), remote())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", logged_out=1))


@bp.route("/language", methods=["POST"])
@login_required
def language():
    chosen = request.form.get("lang")
    if chosen not in ("ja", "en"):
        abort(400)
    users.set_locale(db(), current_user.id, chosen, actor=actor())
    session["lang"] = chosen
    # Back to the page the switch was pressed on (the form says which: no Referer is sent),
    # never off the site.
    return redirect(safe_next(request.form.get("next")))
