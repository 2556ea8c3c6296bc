"""Issue 12, findings 1–3, 9, 10 and 12 through the web UI: sessions that can be revoked,
the idle timeout that background polling does not extend, the login throttle by device,
the second factor, the emergency login, one's own password, and who may touch the roster."""
from __future__ import annotations

import re

import pyotp

from appliance import audit, emergency, users
from tests import web_support
from tests.web_support import (ADMIN, STAFF, csrf_token, enrol_two_factor, field_errors, log_in,
                               post_form)

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures

COOKIE = "tsunagu_session"


def _cookie(client) -> str:
    return client.get_cookie(COOKIE).value


def _with_cookie(web, value: str):
    thief = web.client()
    thief.set_cookie(COOKIE, value)
    return thief


# -- finding 2: sessions can be revoked -----------------------------------------------------

def test_a_cookie_copied_before_logout_no_longer_opens_anything(web, admin):
    copied = _cookie(admin)
    assert _with_cookie(web, copied).get("/admin/users").status_code == 200
    post_form(admin, "/logout", form_page="/")
    thief = _with_cookie(web, copied)
    for path in ("/contacts", "/admin/users"):
        assert thief.get(path).status_code == 302, path


def test_logging_out_on_one_device_ends_the_accounts_other_sessions(web):
    tablet, desk = web.logged_in(*STAFF), web.logged_in(*STAFF)
    post_form(tablet, "/logout", form_page="/")
    assert desk.get("/contacts").status_code == 302


# -- finding 9: polling does not keep a session alive ---------------------------------------

def test_the_dashboard_refresh_and_status_polling_do_not_extend_the_idle_timeout(web, staff):
    limit = web.config.web.session_timeout_minutes * 60
    for _ in range(int(limit // 15) - 1):             # a dashboard left open on the desk
        web.clock.t += 15
        assert staff.get("/?auto=1").status_code == 200
        assert staff.get("/api/status", headers={"X-Tsunagu-Background": "1"}).status_code == 200
    web.clock.t += 30                                 # nobody touched it for the whole limit
    response = staff.get("/contacts")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]


def test_the_pages_background_requests_say_they_are_background():
    script = (web_support.Path(__file__).resolve().parent.parent / "webui" / "static"
              / "app.js").read_text()
    assert '"X-Tsunagu-Background": "1"' in script
    # All but the two a person sets off: typing (the counter) and choosing a template.
    assert script.count("fetch(") == script.count("headers: BACKGROUND") + 2
    assert 'searchParams.set("auto", "1")' in script             # the dashboard's refresh


def test_a_person_using_the_pages_stays_logged_in(web, staff):
    for _ in range(4):
        web.clock.t += 20 * 60
        assert staff.get("/contacts").status_code == 200


# -- finding 1: the throttle by device, visible to admins ------------------------------------

def test_guessing_from_one_device_never_locks_the_nurse_out_of_hers(web):
    attacker = web.client()
    for _ in range(15):
        log_in(attacker, STAFF[0], "wrong-password-1")
        log_in(attacker, ADMIN[0], "wrong-password-1")
    nurse = web.client()
    nurse.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert log_in(nurse, *STAFF).status_code == 302


def test_admins_see_failed_logins_by_device_and_can_let_one_try_again(web, admin):
    guesser = web.client()
    guesser.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    for _ in range(web.config.web.max_failed_logins + 1):
        log_in(guesser, "nobody", "wrong-password-1")
    page = admin.get("/").get_data(as_text=True)
    section = page.split('id="login-attempts"')[1]
    assert "192.0.2.66" in section and "nobody" in section and "秒待ち" in section
    response = post_form(admin, "/admin/login-attempts/clear", {"address": "192.0.2.66"},
                         form_page="/")
    assert response.status_code == 302
    assert "login_throttle_clear" in web.audit_actions()
    page = log_in(guesser, *STAFF)
    assert page.status_code == 302


def test_staff_do_not_see_the_login_attempts(web, staff):
    assert 'id="login-attempts"' not in staff.get("/").get_data(as_text=True)


# -- the emergency login (break-glass) --------------------------------------------------------

def test_an_emergency_code_opens_a_sending_session_once_and_is_loudly_recorded(web, admin):
    codes = emergency.new_codes(web.db, count=2, actor="install", now=web.clock.t)
    nurse = web.client()
    nurse.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    for _ in range(10):                    # her device is being made to wait: no matter
        log_in(nurse, STAFF[0], "wrong-password-1")
    response = nurse.post("/login/emergency", data={
        "code": codes[0].lower().replace("-", " "), "csrf_token": csrf_token(nurse, "/login/emergency")})
    assert response.status_code == 302
    page = nurse.get("/send").get_data(as_text=True)
    assert "緊急ログイン" in page and "送信" in page
    assert nurse.get("/admin/users").status_code == 403         # it sends; it does not manage
    assert nurse.get("/contacts/export").status_code == 403
    entry = audit.entries(web.db, action="emergency_login")[0]
    assert entry.remote_addr == "192.0.2.7" and entry.detail["codes_left"] == 1
    dashboard = admin.get("/").get_data(as_text=True)
    assert "192.0.2.7 から緊急ログイン" in dashboard
    again = web.client()
    reused = again.post("/login/emergency", data={
        "code": codes[0], "csrf_token": csrf_token(again, "/login/emergency")})
    assert reused.status_code == 200 and "使用済み" in reused.get_data(as_text=True)
    assert "emergency_login_failed" in web.audit_actions()


def test_the_emergency_account_cannot_log_in_with_a_password(web):
    emergency.log_in(web.db, emergency.new_codes(web.db, actor="t", now=web.clock.t)[0],
                     now=web.clock.t)
    response = log_in(web.client(), users.EMERGENCY_USER, "anything-at-all-1")
    assert response.status_code == 200


def test_every_login_page_offers_the_emergency_login(web):
    assert "/login/emergency" in web.client().get("/login").get_data(as_text=True)


# -- finding 10: the second factor ------------------------------------------------------------

def test_an_admin_logs_in_with_a_code_and_a_code_cannot_be_used_twice(web):
    client = web.client()
    first = log_in(client, *ADMIN)
    assert first.headers["Location"].endswith("/login/code")
    assert client.get("/").status_code == 302, "not in before the code"
    code = web.totp_code(ADMIN[0])
    assert client.post("/login/code", data={"code": code, "csrf_token": csrf_token(
        client, "/login/code")}).status_code == 302
    assert client.get("/admin/users").status_code == 200
    replay = web.client()
    log_in(replay, *ADMIN)
    page = replay.post("/login/code", data={"code": code, "csrf_token": csrf_token(
        replay, "/login/code")}).get_data(as_text=True)
    assert "確認コードが違います" in page


def test_a_recovery_code_works_once_in_place_of_the_phone(web):
    codes = enrol_two_factor(web.db, STAFF[0], web.clock.t)
    assert len(codes) == 10 and len(set(codes)) == 10
    for expected in (302, 200):
        client = web.client()
        log_in(client, *STAFF)
        response = client.post("/login/code", data={"code": codes[3].upper(),
                                                     "csrf_token": csrf_token(client, "/login/code")})
        assert response.status_code == expected
    assert audit.entries(web.db, action="recovery_code_used")[0].detail == {"left": 9}


def test_a_nurse_sets_up_her_own_second_factor_from_her_account_page(web, staff):
    page = staff.get("/account/two-factor").get_data(as_text=True)
    assert re.search(r'<img src="data:image/svg\+xml', page)
    key = re.search(r'<code class="key">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    wrong = post_form(staff, "/account/two-factor", {"code": "000000"},
                      form_page="/account").get_data(as_text=True)
    assert field_errors(wrong, "code")
    done = post_form(staff, "/account/two-factor", {"code": pyotp.TOTP(key).at(web.clock.t)},
                     form_page="/account").get_data(as_text=True)
    assert len(re.findall(r"<li><code>[a-z0-9]{5}-[a-z0-9]{5}</code></li>", done)) == 10
    assert users.get_user(web.db, STAFF[0]).two_factor
    assert "two_factor_enable" in web.audit_actions()


def test_the_key_being_set_up_is_never_in_the_cookie(web, staff):
    page = staff.get("/account/two-factor").get_data(as_text=True)
    key = re.search(r'<code class="key">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    serializer = web.app.session_interface.get_signing_serializer(web.app)
    session = serializer.loads(_cookie(staff))
    assert key not in repr(session)


def test_a_second_factor_can_be_required_of_everyone_by_configuration(web):
    web.app.extensions["tsunagu_config"] = _with_web(web, two_factor="all")
    response = log_in(web.client(), *STAFF)
    assert response.headers["Location"].endswith("/login/enrol")


def _with_web(web, **changes):
    from dataclasses import replace
    return replace(web.config, web=replace(web.config.web, **changes))


# -- finding 10: one's own password -----------------------------------------------------------

def test_a_nurse_changes_her_own_password_and_her_other_devices_are_logged_out(web, staff):
    other = web.logged_in(*STAFF)
    weak = post_form(staff, "/account/password", {"current": STAFF[1], "password": "password12",
                                                  "repeat": "password12"}, form_page="/account")
    assert field_errors(weak.get_data(as_text=True), "password")
    wrong = post_form(staff, "/account/password", {"current": "nope", "password": "blue kite 5 river",
                                                   "repeat": "blue kite 5 river"},
                      form_page="/account")
    assert field_errors(wrong.get_data(as_text=True), "current")
    done = post_form(staff, "/account/password", {"current": STAFF[1], "password": "blue kite 5 river",
                                                  "repeat": "blue kite 5 river"},
                     form_page="/account")
    assert done.status_code == 302
    assert staff.get("/contacts").status_code == 200, "this session goes on"
    assert other.get("/contacts").status_code == 302, "the other device is logged out"
    assert log_in(web.client(), STAFF[0], "blue kite 5 river").status_code == 302


# -- finding 12: least privilege for the roster -----------------------------------------------

def test_staff_can_neither_export_nor_import_the_roster(web, staff):
    assert staff.get("/contacts/export?encoding=utf-8").status_code == 403
    assert staff.get("/contacts/import").status_code == 403
    assert "/contacts/export" not in staff.get("/contacts").get_data(as_text=True)
    assert audit.count(web.db, action="contacts_export") == 0


def test_the_office_role_may_export_the_roster(web, admin):
    users.set_role(web.db, STAFF[0], "office", actor="test")
    office = web.logged_in(*STAFF)
    assert office.get("/contacts/export?encoding=utf-8").status_code == 200
    assert office.get("/admin/users").status_code == 403


def test_the_roles_that_may_touch_the_roster_are_configurable(web, staff):
    web.app.extensions["tsunagu_config"] = _with_web(web, roster_roles=("admin", "office",
                                                                        "staff"))
    assert staff.get("/contacts/export?encoding=utf-8").status_code == 200


# -- finding 3: cookies are Secure behind the proxy ---------------------------------------------

def test_the_session_cookie_is_secure_when_configured(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text(web_support.CONFIG.replace("[web]\n", "[web]\nsession_cookie_secure = true\n"),
                    encoding="utf-8")
    app = web_support.create_app(web_support.config_mod.load(path), testing=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True
