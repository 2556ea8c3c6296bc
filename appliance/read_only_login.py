"""Logging in while the storage refuses every write: a read-only or failing SD card.

On that day nothing can be sent, and the storage page tells staff to phone the patients
from the call list — which is behind the login. A login writes (the throttle's attempt
rows, the audit row, the TOTP step used, the time of the last login); here those writes
are kept in this process instead, under the same rules, so that staff can read the call
list and the contacts while an attacker on the LAN gains nothing:

- the throttle is appliance.login_throttle itself, over an in-memory table of the same
  shape: the same waits per address and the same limit across addresses, for as long as
  this process runs (restarting it takes a shell on the appliance);
- a TOTP code is accepted once: the last step used is kept here, above the database's;
- what is used once and can only be marked used in the database — a recovery code, an
  emergency code, setting up two-step verification — is refused, saying what to do;
- the audit rows go to the journal, as the reads do (webui.read_log).

Every page that only reads then works; whatever writes meets the storage page as before.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

from . import login_throttle, two_factor, users

log = logging.getLogger(__name__)


class ReadOnlyLogins:
    """The logins of one process while its storage refuses writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts = sqlite3.connect(":memory:", check_same_thread=False)
        self._attempts.execute("CREATE TABLE login_attempts (id INTEGER PRIMARY KEY, "
                               "at REAL NOT NULL, remote_addr TEXT NOT NULL, username TEXT, "
                               "outcome TEXT NOT NULL)")
        self._totp_steps: dict[int, int] = {}

    def verify_password(self, conn: sqlite3.Connection, username: str, password: str, *,
                        now: float, throttle: login_throttle.Policy,
                        remote_addr: str | None) -> users.User:
        """users.verify_login without writing to *conn* (read-only)."""
        address = remote_addr or "unknown"
        name = users.clean_username(username)[:users.USERNAME_MAX * 4]
        attempt = self._attempt(address, name, now, throttle)
        row, reason = users.password_matches(conn, name, password)
        with self._lock:
            if reason is None:
                login_throttle.settle(self._attempts, attempt, "password_ok")
        if reason is not None:
            self._journal(name or "?", "login_failed", address, reason)
            raise users.refused_for(reason)
        return users.user_of(row)

    def verify_code(self, conn: sqlite3.Connection, user: users.User, code: str, *,
                    now: float, throttle: login_throttle.Policy,
                    remote_addr: str | None) -> str:
        """two_factor.verify without writing: 'totp' when *code* is the app's, once."""
        address = remote_addr or "unknown"
        attempt = self._attempt(address, user.username, now, throttle, outcome="bad_code")
        row = users.require(conn, user.id)
        cleaned = two_factor.clean_code(code)
        step = two_factor.matching_step(row["totp_secret"], cleaned, now) \
            if row["totp_secret"] else None
        with self._lock:
            used = max(row["totp_last_step"] or -1, self._totp_steps.get(user.id, -1))
            if step is not None and step > used:
                self._totp_steps[user.id] = step
                login_throttle.settle(self._attempts, attempt, "password_ok")
                return "totp"
        if len(cleaned) == two_factor.RECOVERY_CODE_LENGTH:
            raise users.LoginRefused("read_only_code")
        self._journal(user.username, "login_failed", address, "bad_code")
        raise users.LoginRefused("bad_code")

    def logged_in(self, user: users.User, *, method: str, now: float,
                  remote_addr: str | None) -> None:
        """The login is complete: the address's failures are forgotten, as after a login
        the database records."""
        with self._lock:
            login_throttle.record(self._attempts, remote_addr or "unknown", user.username,
                                  "ok", now)
        self._journal(user.username, "login", remote_addr or "unknown", method)

    def _attempt(self, address: str, name: str, now: float, throttle: login_throttle.Policy,
                 *, outcome: str = "bad_credentials") -> int:
        """Ask the throttle, and count the attempt as a failure until it is settled (as
        users.verify_login does, so parallel guesses are all counted)."""
        with self._lock:
            wait = login_throttle.wait_for(self._attempts, throttle, address, now)
            if wait > 0:
                login_throttle.record(self._attempts, address, name, "throttled", now)
            else:
                return login_throttle.record(self._attempts, address, name, outcome, now)
        self._journal(name or "?", "login_failed", address, "throttled")
        raise users.LoginRefused("throttled", wait=wait)

    @staticmethod
    def _journal(actor: str, action: str, address: str, detail: str) -> None:
        log.warning("not in the audit log (the storage refuses writes): %s %s from %s (%s)",
                    actor, action, address, detail)
