"""The staff web UI: a Flask application factory.

Every page but the login page needs a login (Flask-Login); every form carries a CSRF token
(Flask-WTF); every response carries security headers that keep the page to its own origin.
The UI never opens a modem: it writes broadcasts into the database and reads back what the
daemon did, like every other part of Tsunagu.
"""
from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time

from flask import Flask, g, render_template, request, session
from werkzeug.routing import IntegerConverter
from flask_babel import Babel, format_decimal
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from appliance import audit
from appliance import config as config_mod
from appliance import wording
from appliance.db import connect, connect_read_only

LANGUAGES = ("ja", "en")
UPLOAD_LIMIT_MB = 8  # a roster CSV of thousands of rows fits

# Self only: no CDN, no inline script (the CSP is what makes injected HTML inert).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")


def create_app(config: config_mod.Config, *, testing: bool = False) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config_mod.ensure_secret_key(config),
        TESTING=testing,
        SESSION_COOKIE_NAME="tsunagu_session",
        # Behind the HTTPS proxy the cookie is never sent over plain http.
        SESSION_COOKIE_SECURE=config.web.session_cookie_secure,
        REMEMBER_COOKIE_SECURE=config.web.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=config.web.session_timeout_minutes),
        MAX_CONTENT_LENGTH=UPLOAD_LIMIT_MB * 1024 * 1024,
        BABEL_DEFAULT_LOCALE="ja",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        WTF_CSRF_TIME_LIMIT=None,             # the session timeout bounds it already
    )
    # Before the blueprints: every <int:…> in a URL is a row id SQLite can hold; a longer
    # number is "no such page" (404), not an OverflowError deep in a query (500).
    app.url_map.converters["int"] = RowId
    app.extensions["tsunagu_config"] = config
    app.extensions["tsunagu_clock"] = time.time
    CSRFProtect(app)
    Babel(app, locale_selector=_locale)
    _login(app)
    _database(app)
    _headers(app)
    _errors(app)
    _filters(app)
    from . import storage_errors
    storage_errors.install(app)
    from . import (account_views, admin_views, api_admin_views, api_v1, api_views, auth,
                   broadcast_views, ca_views, contact_views, phone_views, reminder_views,
                   schedule_views, template_views, views)
    for module in (auth, views, broadcast_views, contact_views, template_views, schedule_views,
                   admin_views, account_views, ca_views, api_admin_views, reminder_views,
                   phone_views):
        app.register_blueprint(module.bp)
    # The API authenticates each request by its token, never by the session cookie a
    # browser would send along: no CSRF token applies (webui.api_v1).
    assert api_views.bp is api_v1.bp
    app.extensions["csrf"].exempt(api_v1.bp)
    app.register_blueprint(api_v1.bp)
    return app


SQLITE_MAX_INT = 2**63 - 1
MAX_PAGE = 1_000_000  # far past any real page, small enough for SQLite's OFFSET


class RowId(IntegerConverter):
    """<int:…> limited to what an SQLite INTEGER holds."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", SQLITE_MAX_INT)
        super().__init__(url_map, *args, **kwargs)


def page_arg() -> int:
    """The ?page= of a paged list: 1 when missing or not a number, never past MAX_PAGE."""
    return min(MAX_PAGE, max(1, request.args.get("page", 1, type=int)))


def tsunagu_config() -> config_mod.Config:
    from flask import current_app
    return current_app.extensions["tsunagu_config"]


def now() -> float:
    from flask import current_app
    return current_app.extensions["tsunagu_clock"]()


def db():
    """This request's database connection (opened on first use, closed at teardown).

    When the disk will not let it be opened for writing (full, read-only), it is opened
    for reading: pages still show what is stored, and a write meets the storage fault,
    which the storage page explains (webui.storage_errors).
    """
    if "db" not in g:
        database = tsunagu_config().database
        try:
            g.db = connect(database, migrate=False)
        except sqlite3.Error as exc:
            from . import storage_errors
            if storage_errors.met(exc) is None:
                raise
            if g.get("reserve_released"):
                g.db = connect(database, migrate=False)  # the reserve made room
            else:
                try:
                    g.db = connect_read_only(database)
                except sqlite3.Error:
                    raise exc from None
    return g.db


def _locale() -> str:
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    if getattr(current_user, "is_authenticated", False) and "lang" not in session:
        return current_user.locale
    return session.get("lang") or "ja"


def _login(app: Flask) -> None:
    from .auth import load_user
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = None  # the login page says why itself
    # Not Flask-Login's "strong" protection: it does nothing for permanent sessions, and an
    # address that changes under DHCP would log a nurse out. Sessions end instead by the
    # account's session version (auth.load_user) and the idle timeout.
    manager.session_protection = None
    manager.user_loader(load_user)


def _database(app: Flask) -> None:
    # Migrations run once here, not per request (the daemon also applies them at start).
    # A disk that refuses them does not stop the web UI: its pages say what is wrong.
    from appliance import storage
    database = app.extensions["tsunagu_config"].database
    try:
        connect(database).conn.close()
    except sqlite3.Error as exc:
        fault = storage.fault_of(exc, database.parent)
        if fault is None:
            raise
        logging.getLogger(__name__).error("the database cannot be opened (%s: %s); the "
                                          "pages say so", fault.kind, fault.detail)
        app.extensions["tsunagu_storage_fault"] = fault  # for the banner (storage_errors)

    @app.teardown_appcontext
    def close_db(_exc):
        database = g.pop("db", None)
        if database is not None:
            database.conn.close()


def _headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # Same-origin: nothing leaks to other sites, and over HTTPS Flask-WTF checks that a
        # form was posted from this site's own pages (it refuses a post without a Referer).
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            # Patient data: never in a shared browser's cache.
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def refresh_session():
        session.permanent = True  # the timeout counts from the last request
        g.audit_origin = audit.set_origin(request.remote_addr)

    @app.teardown_request
    def forget_origin(_exc):
        token = g.pop("audit_origin", None)
        if token is not None:
            audit.reset_origin(token)


def _errors(app: Flask) -> None:
    from flask_babel import gettext as _

    def page(code: int, title: str, message: str):
        from . import api_v1
        if api_v1.wants_problem():
            # The clinic's systems read problem details (RFC 9457), not the staff's page.
            return api_v1.status_problem(code)
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return page(400, _("The form has expired"),
                    _("Please go back, reload the page and try again. Nothing was saved."))

    @app.errorhandler(400)
    def bad_request(exc):
        return page(400, _("Bad request"), _("The request could not be understood."))

    @app.errorhandler(403)
    def forbidden(exc):
        return page(403, _("Not allowed"), _("Your account cannot open this page."))

    @app.errorhandler(404)
    def not_found(exc):
        return page(404, _("Not found"), _("There is no such page."))

    @app.errorhandler(405)
    def wrong_method(exc):
        from . import api_v1
        if api_v1.wants_problem():
            return api_v1.http_problem(exc)
        # e.g. /logout typed into the address bar: it is a button (a form post) on purpose.
        return page(405, _("Use the buttons on the page"),
                    _("This address does not open on its own. Go back and use the page's "
                      "button (for example, 'Log out' at the top)."))

    @app.errorhandler(413)
    def too_large(exc):
        # Usually an Excel workbook or a photo picked instead of the CSV roster.
        return page(413, _("The file is too large"),
                    _("Files up to %(mb)d MB can be uploaded. Save the roster from Excel as "
                      "CSV and try again. Nothing was saved.", mb=UPLOAD_LIMIT_MB))

    @app.errorhandler(500)
    def server_error(exc):
        return page(500, _("Something went wrong"),
                    _("The page failed. What was saved before is kept. Try again, or use "
                      "the call list on paper."))


def when(value: float | None, fmt: str = "%m/%d %H:%M") -> str:
    """A moment in the clinic's timezone, as the pages show it (the `when` filter)."""
    if not value:
        return "-"
    moment = dt.datetime.fromtimestamp(value, tsunagu_config().zone)
    # %a is the C locale's English day name: the weekday in the page's language instead.
    return moment.strftime(fmt.replace("%a", wording.weekday_of(moment, lang())))


def _filters(app: Flask) -> None:
    app.add_template_filter(when, "when")

    @app.template_filter("phone")
    def phone_filter(value: str | None) -> str:
        from appliance.phone import display_number
        return display_number(value) if value else ""

    @app.template_filter("number")
    def number(value) -> str:
        return format_decimal(value or 0)

    @app.template_filter("day")
    def day(value: float | None, fmt: str = "%m/%d") -> str:
        """A date with its weekday in the page's language: 12/06(日)."""
        if not value:
            return "-"
        moment = dt.datetime.fromtimestamp(value, tsunagu_config().zone)
        return f"{moment.strftime(fmt)}({wording.weekday_of(moment, lang())})"

    @app.context_processor
    def globals_():
        from flask_babel import get_locale
        return {"clinic_name": tsunagu_config().clinic_name, "languages": LANGUAGES,
                "config_tz": tsunagu_config().timezone,
                "get_locale": get_locale, "lang": lang(), "words": wording,
                "unhandled_replies": unhandled_replies,
                "labels": {key: wording.state(key, lang()) for key in wording.STATES},
                "inf": float("inf"), "now_ts": now()}


def unhandled_replies() -> int:
    """Replies nobody has handled yet, for the menu (0 when logged out)."""
    from flask_login import current_user

    from appliance import replies
    if not getattr(current_user, "is_authenticated", False):
        return 0
    return replies.unhandled_count(db().conn)


def lang() -> str:
    """The page's language, 'ja' or 'en' (what Flask-Babel chose for this request)."""
    from flask_babel import get_locale
    return "en" if str(get_locale() or "ja") == "en" else "ja"


def words(table) -> dict[str, str]:
    """A table of appliance.wording (key → (Japanese, English)) in the page's language: the
    pages name states and choices from the same list as the CLI and the audit page."""
    return {key: wording.word(table, key, lang()) for key in table}
