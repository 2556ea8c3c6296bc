"""Logging in and out, lockout, session timeout, language, and what every response carries."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance import users
from tests import web_support
from tests.web_support import ADMIN, STAFF, csrf_token, log_in, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures

TEMPLATES = Path(__file__).resolve().parent.parent / "webui" / "templates"


def test_the_login_page_and_static_files_open_without_a_login(web):
    client = web.client()
    page = client.get("/login")
    assert page.status_code == 200 and "ログイン" in page.get_data(as_text=True)
    assert "<nav>" not in page.get_data(as_text=True)      # nothing to see before logging in
    for asset in ("/static/app.css", "/static/app.js"):
        with client.get(asset) as response:
            assert response.status_code == 200


def test_a_right_password_logs_in_and_is_audited(web):
    response = log_in(web.client(), *STAFF)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert web.audit_actions()[-1] == "login"


def test_a_wrong_password_is_refused_on_the_page_and_audited(web):
    response = log_in(web.client(), STAFF[0], "wrong-password-1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "ユーザー名またはパスワードが違います" in page
    assert web.audit_actions()[-1] == "login_failed"


def test_the_login_returns_to_the_page_asked_for_but_never_to_another_site(web):
    assert log_in(web.client(), *STAFF, next_path="/contacts").headers["Location"] == "/contacts"
    for target in ("//evil.example/", "https://evil.example/", "evil.example"):
        response = log_in(web.client(), *STAFF, next_path=target)
        assert response.headers["Location"] == "/", target


def test_an_idle_session_ends_and_the_login_page_says_so(web, staff):
    web.clock.t += web.config.web.session_timeout_minutes * 60 + 1
    response = staff.get("/contacts")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert "ログイン" in page and "<nav>" not in page
    assert staff.get("/contacts").status_code == 302             # the old session is gone


def test_the_session_cookie_is_httponly_samesite_and_expires_with_the_timeout(web):
    cookie = log_in(web.client(), *STAFF).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert web.app.permanent_session_lifetime.total_seconds() == (
        web.config.web.session_timeout_minutes * 60)


def test_logging_out_ends_the_session_and_is_audited(web, staff):
    response = post_form(staff, "/logout", form_page="/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert web.audit_actions()[-1] == "logout"
    assert staff.get("/").status_code == 302


def test_logout_by_address_bar_gets_a_styled_page_not_a_logout(web, staff):
    response = staff.get("/logout")
    page = response.get_data(as_text=True)
    assert response.status_code == 405 and "つなぐ透析クリニック" in page
    assert "画面のボタンから操作してください" in page
    assert staff.get("/").status_code == 200


def test_a_deactivated_account_loses_its_open_session(web, staff):
    users.deactivate(web.db, STAFF[0], actor="test")
    response = staff.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_login_page_switches_to_english_and_the_choice_sticks_to_the_user(web):
    client = web.client()
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert 'lang="en"' in page and "Log in" in page
    log_in(client, *STAFF)
    assert "Sending service" in client.get("/").get_data(as_text=True)
    assert users.get_user(web.db, STAFF[0]).locale == "en"
    fresh = web.logged_in(*STAFF)                       # another browser, same person
    assert "Sending service" in fresh.get("/").get_data(as_text=True)


def test_japanese_is_the_default(web, staff):
    page = staff.get("/").get_data(as_text=True)
    assert 'lang="ja"' in page and "ダッシュボード" in page and "Dashboard<" not in page


def test_switching_language_refuses_an_unknown_one(web, staff):
    assert post_form(staff, "/language", {"lang": "xx"}, form_page="/").status_code == 400
    assert users.get_user(web.db, STAFF[0]).locale == "ja"


@pytest.mark.parametrize("path", ["/login", "/", "/nope", "/admin/users", "/static/app.css"])
def test_every_response_carries_the_security_headers(web, staff, path):
    response = staff.get(path)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_with_patient_data_are_not_cached_but_static_files_are(web, staff):
    assert staff.get("/contacts").headers["Cache-Control"] == "no-store"
    with staff.get("/static/app.css") as asset:
        assert "no-store" not in asset.headers.get("Cache-Control", "")


def test_no_template_has_inline_script_or_style_the_csp_would_block():
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", text), path.name
        assert "http://" not in text and "https://" not in text, path.name


def test_error_pages_are_in_japanese_in_the_same_layout(web, staff):
    missing = staff.get("/no-such-page")
    assert missing.status_code == 404 and "見つかりません" in missing.get_data(as_text=True)
    forbidden = staff.get("/admin/audit")
    page = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403 and "権限がありません" in page and "<nav>" in page


def test_a_stale_form_is_answered_with_the_csrf_page_and_the_login_not_attempted(web):
    client = web.client()
    response = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 400 and "フォームの有効期限" in response.get_data(as_text=True)
    assert "login" not in web.audit_actions()
    forged = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                         "csrf_token": csrf_token(web.client(), "/login")})
    assert forged.status_code == 400                     # a token from another session
