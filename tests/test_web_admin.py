"""Admin pages: user accounts (add, role, password, second factor, deactivate) addressed by
id, the audit log and the settings page; staff are refused all of it."""
from __future__ import annotations

import re

import pytest

from appliance import audit, users, wording
from tests import web_support
from tests.web_support import ADMIN, STAFF, enrol_two_factor, field_errors, log_in, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures


def act(client, username: str, action: str, **kwargs):
    user = users.get_user(client.application.extensions["test_db"], username)
    return post_form(client, f"/admin/users/{user.id if user else 999}/{action}", form_page="/",
                     **kwargs)


@pytest.fixture(autouse=True)
def _database_for_act(web):
    web.app.extensions["test_db"] = web.db


@pytest.mark.parametrize("action", ["admin", "office", "reset", "reset_2fa", "deactivate"])
def test_staff_cannot_change_accounts_and_nothing_changes(web, staff, action):
    before = users.get_user(web.db, STAFF[0])
    assert act(staff, STAFF[0], action).status_code == 403
    assert users.get_user(web.db, STAFF[0]) == before


def test_staff_cannot_add_a_user(web, staff):
    response = post_form(staff, "/admin/users", {"username": "mallory", "role": "admin"},
                         form_page="/")
    assert response.status_code == 403 and users.get_user(web.db, "mallory") is None


def test_an_admin_adds_a_user_with_a_chosen_password_who_can_then_log_in(web, admin):
    post_form(admin, "/admin/users", {"username": "clerk", "role": "staff",
                                      "password": "spring-rain-2026"})
    assert users.get_user(web.db, "clerk").role == "staff"
    assert log_in(web.client(), "clerk", "spring-rain-2026").status_code == 302
    assert "user_create" in web.audit_actions()


@pytest.mark.parametrize("data, field, message", [
    ({"username": "nurse1", "role": "staff"}, "username", "既に"),
    ({"username": "two words", "role": "staff"}, "username", "英数字"),
    ({"username": "ward/3", "role": "staff"}, "username", "英数字"),
    ({"username": "adm\u0456n", "role": "admin"}, "username", "英数字"),
    ({"username": "clerk", "role": "staff", "password": "short"}, "password", "文字以上"),
    ({"username": "clerk", "role": "staff", "password": "password1234"}, "password", "推測"),
])
def test_a_bad_new_user_is_refused_beside_its_field_and_nothing_saved(web, admin, data, field,
                                                                     message):
    before = web.count("users")
    page = post_form(admin, "/admin/users", data).get_data(as_text=True)
    assert any(message in e for e in field_errors(page, field)), field_errors(page, field)
    assert web.count("users") == before


def test_roles_change_both_ways_and_the_role_opens_the_admin_pages(web, admin):
    nurse = web.logged_in(*STAFF)
    act(admin, STAFF[0], "admin")
    assert nurse.get("/").status_code == 302, "a role change ends her open session"
    enrol_two_factor(web.db, STAFF[0], web.clock.t)   # admins must have a second factor
    promoted = web.logged_in(*STAFF)
    assert promoted.get("/admin/users").status_code == 200
    act(admin, STAFF[0], "staff")
    assert promoted.get("/admin/users").status_code == 302
    assert web.audit_actions().count("user_role") == 2


def test_a_new_admin_without_a_second_factor_must_set_one_up_before_getting_in(web, admin):
    act(admin, STAFF[0], "admin")
    client = web.client()
    response = log_in(client, *STAFF)
    assert response.headers["Location"].endswith("/login/enrol")
    assert client.get("/admin/users").status_code == 302, "not in before the set-up"


def test_a_reset_shows_a_new_password_once_never_in_a_cookie_and_ends_her_sessions(web, admin):
    """Finding 3: the new password was put in a flash message, i.e. in the session cookie;
    finding 2: the nurse's open session survived the reset."""
    nurse = web.logged_in(*STAFF)
    response = act(admin, STAFF[0], "reset")
    page = response.get_data(as_text=True)
    assert "nurse1 の新しいパスワード" in page      # large, on the page (issue 11)
    new = re.search(r'<code class="secret"[^>]*>(\S+)</code>', page).group(1)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert all(new not in cookie for cookie in response.headers.getlist("Set-Cookie"))
    assert nurse.get("/contacts").status_code == 302           # her old session is over
    assert log_in(web.client(), *STAFF).status_code == 200
    assert log_in(web.client(), STAFF[0], new).status_code == 302
    assert new not in admin.get("/admin/users").get_data(as_text=True)


def test_an_admin_resets_a_lost_second_factor_and_it_is_audited(web, admin):
    act(admin, ADMIN[0], "reset_2fa")
    assert not users.get_user(web.db, ADMIN[0]).two_factor
    entry = audit.entries(web.db, action="two_factor_reset")[0]
    assert entry.actor == ADMIN[0] and entry.detail["username"] == ADMIN[0]
    assert entry.remote_addr == "127.0.0.1"


def test_a_user_with_a_slash_in_the_name_can_still_be_managed_by_id(web, admin):
    """Finding 11: 'ward/3' (made before the name rules) broke every admin action."""
    with web.db.conn:
        web.db.conn.execute("UPDATE users SET username = 'ward/3' WHERE username = ?",
                            [STAFF[0]])
    assert act(admin, "ward/3", "deactivate").status_code == 302
    assert not users.get_user(web.db, "ward/3").active


def test_a_deactivated_user_cannot_log_in_and_can_be_activated_again(web, admin):
    act(admin, STAFF[0], "deactivate")
    assert log_in(web.client(), *STAFF).status_code == 200
    act(admin, STAFF[0], "activate")
    assert log_in(web.client(), *STAFF).status_code == 302


def test_the_last_admin_cannot_be_deactivated(web, admin):
    page = act(admin, ADMIN[0], "deactivate", follow_redirects=True).get_data(as_text=True)
    assert "最後の管理者は無効にできません" in page
    assert users.get_user(web.db, ADMIN[0]).active


def test_an_unknown_action_or_user_changes_nothing(web, admin):
    assert act(admin, STAFF[0], "delete").status_code == 404
    assert act(admin, "nobody", "deactivate").status_code == 404


def test_the_users_page_offers_each_other_role_as_a_button(web, admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    nurse = users.get_user(web.db, STAFF[0]).id
    for role, label in (("admin", "管理者にする"), ("office", "事務にする")):
        form = re.search(rf'action="/admin/users/{nurse}/{role}"[^>]*>.*?</form>', page, re.S)
        assert form and label in form.group(0), role
    assert f'action="/admin/users/{nurse}/staff"' not in page     # her own role


def test_roles_are_shown_in_the_page_language(web, admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    assert re.search(r"<td[^>]*>管理者</td>", page) and re.search(r"<td[^>]*>職員</td>", page)
    act(admin, STAFF[0], "office")
    assert re.search(r"<td[^>]*>事務</td>", admin.get("/admin/users").get_data(as_text=True))


# -- audit log -------------------------------------------------------------------------------

def test_the_audit_log_is_newest_first_and_paged(web, admin):
    for i in range(150):
        audit.record(web.db.conn, "test", "probe", n=i)
    first = admin.get("/admin/audit").get_data(as_text=True)
    numbers = [int(n) for n in re.findall(r"n: (\d+)", first)]
    assert numbers[:3] == [149, 148, 147] and len(numbers) == 100
    assert "page=2" in first and "page=0" not in first
    second = admin.get("/admin/audit?page=2").get_data(as_text=True)
    assert re.findall(r"n: (\d+)", second)[0] == "49" and "page=1" in second


def test_the_audit_log_filters_by_action_and_keeps_the_filter_when_paging(web, admin):
    for i in range(120):
        audit.record(web.db.conn, "test", "probe", n=i)
    page = admin.get("/admin/audit?action=probe").get_data(as_text=True)
    assert ">ログイン</td>" not in page and "action=probe" in page.split('class="pager"')[1]


def test_audit_details_are_readable_japanese_and_escaped(web, admin):
    audit.record(web.db.conn, "test", "group_create", name="<b>月水金</b> 午前")
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "名前: &lt;b&gt;月水金&lt;/b&gt; 午前" in page and "\\u" not in page


def test_logins_and_user_changes_appear_in_the_audit_log(web, admin):
    log_in(web.client(), STAFF[0], "wrong-password-1")
    act(admin, STAFF[0], "office")
    page = admin.get("/admin/audit").get_data(as_text=True)
    for action in ("login_failed", "login", "user_role"):       # named in Japanese (issue 11)
        assert f">{wording.audit_action(action)}</td>" in page, action


# -- settings --------------------------------------------------------------------------------

def test_settings_show_the_config_file_values_read_only(web, admin):
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert "つなぐ透析クリニック" in page and "テスト" in page and "/dev/null" in page
    assert str(web.config.path) in page and "<form method=\"post\"" not in page.split("<main>")[1]
