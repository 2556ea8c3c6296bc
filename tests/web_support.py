"""Shared fixtures for the web UI tests: an app on a temporary config and database, with a
clock the test moves, and clients logged in as staff or as an admin.

Load it in a test module with `pytest_plugins = ["tests.web_support"]`. CSRF protection is on,
as in production: every POST carries a token read from the page, like a browser's would.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance import config as config_mod, contacts, two_factor, users
from appliance.db import connect
from webui import create_app

DATA = Path(__file__).parent / "data"
STAFF = ("nurse1", "nurse-pass-123456")
ADMIN = ("admin1", "admin-pass-123456")
OFFICE = ("office1", "office-pass-123456")   # 事務: may import and export the roster
START = 1_800_000_000.0  # 2027-01-15, a fixed "now" the tests move by hand

CONFIG = """\
database = "t.db"
clinic_name = "つなぐ透析クリニック"
[web]
session_timeout_minutes = 30
max_failed_logins = 3
lockout_minutes = 15
[test]
group = "テスト"
[[modem]]
name = "m0"
port = "/dev/null"
daily_limit = 180
"""


class Clock:
    """The app's clock: tests move it instead of sleeping."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Web:
    app: Flask
    db: object            # sqlite_utils.Database on the same file the app uses
    clock: Clock
    config: config_mod.Config
    group_id: int         # 月水金 午前, with 山田 太郎 in it
    contact_id: int       # 山田 太郎

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def logged_in(self, username: str, password: str) -> FlaskClient:
        client = self.client()
        response = log_in(client, username, password, code=self.totp_code(username))
        assert response.status_code == 302 and "/login" not in response.headers["Location"], \
            f"{username} could not log in"
        return client

    def totp_code(self, username: str) -> str | None:
        return totp_code(self.db, self.clock, username)

    def count(self, table: str, where: str = "1", *params) -> int:
        return self.db.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}",
                                    params).fetchone()[0]

    def audit_actions(self) -> list[str]:
        return [r[0] for r in self.db.conn.execute("SELECT action FROM audit_log ORDER BY id")]


def totp_code(db, clock: Clock, username: str) -> str | None:
    """The code the account's authenticator app shows now (None: no second factor).
    A code is accepted once, so the clock moves to the next 30 s step when needed."""
    row = db.conn.execute("SELECT totp_secret, totp_last_step FROM users WHERE username = ?",
                          [username]).fetchone()
    if row is None or row["totp_secret"] is None:
        return None
    if row["totp_last_step"] is not None and row["totp_last_step"] >= clock.t // 30:
        clock.t = (row["totp_last_step"] + 1) * 30
    return pyotp.TOTP(row["totp_secret"]).at(clock.t)


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the first form on *path*, as a browser would submit it."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str, *, next_path: str = "",
           code: str | None = None):
    """The password form; then, given *code*, the second factor's form when it is asked."""
    path = "/login" + (f"?next={next_path}" if next_path else "")
    response = client.post(path, data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client, "/login")})
    if code is not None and response.headers.get("Location", "").endswith("/login/code"):
        response = client.post("/login/code", data={
            "code": code, "csrf_token": csrf_token(client, "/login/code")})
    return response


def enrol_two_factor(db, username: str, at: float) -> list[str]:
    """Set up the account's authenticator as a person would; returns its recovery codes."""
    user = users.get_user(db, username)
    secret = two_factor.start_enrolment(db, user.id)
    return two_factor.confirm_enrolment(db, user.id, pyotp.TOTP(secret).at(at - 60), now=at - 60,
                                        actor="test")


def post_form(client: FlaskClient, path: str, data: dict | None = None, *,
              form_page: str | None = None, **kwargs):
    """POST *data* to *path* with a CSRF token from *form_page* (default: *path* itself)."""
    token = csrf_token(client, form_page or path)
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


def field_errors(page: str, field_id: str) -> list[str]:
    """The error messages shown beside the form field *field_id* (empty: none)."""
    match = re.search(r'<div class="field has-error">\s*<label[^>]*for="%s"(.*?)</div>'
                      % re.escape(field_id), page, re.S)
    if not match:
        return []
    return [html.unescape(e) for e in re.findall(r'class="error"[^>]*>([^<]*)<', match.group(1))]


@pytest.fixture
def web(tmp_path) -> Web:
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = config_mod.load(path)
    app = create_app(config, testing=True)
    clock = Clock()
    app.extensions["tsunagu_clock"] = clock
    db = connect(config.database)
    users.create_user(db, ADMIN[0], "admin", password=ADMIN[1], actor="test")
    enrol_two_factor(db, ADMIN[0], clock.t)  # admins must have a second factor
    users.create_user(db, STAFF[0], "staff", password=STAFF[1], actor="test")
    users.create_user(db, OFFICE[0], "office", password=OFFICE[1], actor="test")
    group = contacts.create_group(db, "月水金 午前", actor="test", kind="shift")
    contact = contacts.add_contact(db, name="山田 太郎", kana="ヤマダ タロウ", phone="090-1234-5678",
                                   actor="test", group_ids=[group.id])
    try:
        yield Web(app=app, db=db, clock=clock, config=config, group_id=group.id,
                  contact_id=contact.id)
    finally:
        db.conn.close()


@pytest.fixture
def staff(web) -> FlaskClient:
    return web.logged_in(*STAFF)


@pytest.fixture
def office(web) -> FlaskClient:
    return web.logged_in(*OFFICE)


@pytest.fixture
def admin(web) -> FlaskClient:
    return web.logged_in(*ADMIN)
