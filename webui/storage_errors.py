"""A full disk, a read-only one or a damaged database, as staff meet them in the web UI.

- Any page whose database work the storage refuses answers 503 with a page that says, in
  the reader's language, what is wrong and what to do — never a 500, the login included.
  On a full disk the first such write gives back the appliance's reserve
  (appliance.storage.Reserve), so the next attempt has room.
- Every page, the login page included, carries a banner while a storage fault is known:
  the one the daemon reports (its status file), the disk's own state (read-only, full,
  running on the reserve) or the last one this process met.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from flask import Flask, current_app, g, render_template

from appliance import storage

log = logging.getLogger(__name__)


def install(app: Flask) -> None:
    app.extensions.setdefault("tsunagu_storage_fault", None)  # the last one this process met

    @app.errorhandler(sqlite3.Error)
    def database_error(exc):
        return storage_page(exc)

    @app.errorhandler(OSError)
    def os_error(exc):
        return storage_page(exc)

    @app.context_processor
    def storage_banner():
        return {"storage_problem": problem, "storage_reserve_gone": reserve_gone,
                "storage_reserve_mb": app.extensions["tsunagu_config"].daemon.reserve_mb}

    @app.teardown_request
    def forget_fault(exc):
        # A request that used the database and met no fault: the fault is over.
        if exc is None and "db" in g and not g.get("storage_fault_met"):
            app.extensions["tsunagu_storage_fault"] = None


def met(exc: BaseException) -> storage.Fault | None:
    """The storage fault *exc* is (remembered for the banner), or None. On a full disk the
    reserve is given back: then g.reserve_released is True."""
    config = current_app.extensions["tsunagu_config"]
    fault = storage.fault_of(exc, Path(config.database).parent)
    if fault is None:
        return None
    g.storage_fault_met = True
    current_app.extensions["tsunagu_storage_fault"] = fault
    g.reserve_released = fault.kind == storage.FULL and storage.Reserve.of(config).release()
    log.error("storage fault in the web UI (%s): %s", fault.kind, fault.detail)
    return fault


def storage_page(exc: BaseException):
    """The 503 page for a storage fault; anything else is the ordinary 500 page."""
    fault = met(exc)
    if "_login_user" not in g:
        # The user could not be read (Flask-Login keeps the loaded user in g._login_user):
        # the page is shown as to a visitor, so that rendering it does not read again.
        g._login_user = current_app.login_manager.anonymous_user()
    if fault is None:
        current_app.logger.error("unexpected error", exc_info=exc)
        from flask_babel import gettext as _
        return render_template("error.html", code=500, title=_("Something went wrong"),
                               message=_("The page failed. What was saved before is kept. "
                                         "Try again, or use the call list on paper.")), 500
    return render_template("storage_error.html", kind=fault.kind,
                           released=g.get("reserve_released", False),
                           reserve_mb=current_app.extensions["tsunagu_config"].daemon.reserve_mb
                           ), 503, {"Retry-After": "30"}


def reserve_gone() -> bool:
    """A reserve is configured and has been given back."""
    reserve = storage.Reserve.of(current_app.extensions["tsunagu_config"])
    return reserve.size > 0 and not reserve.present


def problem() -> str | None:
    """The storage fault staff should see in the banner now (a kind), or None."""
    if "storage_problem" in g:
        return g.storage_problem
    config = current_app.extensions["tsunagu_config"]
    now = current_app.extensions["tsunagu_clock"]()
    kind = None
    status = storage.read_daemon_status(config)
    if status is not None and status.alive(now, config.check.heartbeat_max_age) and status.fault:
        kind = status.fault.kind
    elif current_app.extensions["tsunagu_storage_fault"] is not None:
        kind = current_app.extensions["tsunagu_storage_fault"].kind
    else:
        try:
            disk = storage.disk(config)
        except OSError:
            disk = None
        if disk is not None and disk.read_only:
            kind = storage.READ_ONLY
        elif disk is not None and disk.full:
            kind = storage.FULL
        elif disk is not None and disk.reserve_used:
            kind = storage.RESERVE_USED
    g.storage_problem = kind
    return kind
