"""Web UI accounts: hashed passwords, policy, lockout, the last admin, audit rows, the CLI."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance import audit, db as db_mod, users
from appliance.cli import main
from appliance.users import LoginRefused, PasswordPolicyError, UserError

PASSWORD = "correct horse 42"
T0 = 1_750_000_000.0


def login(db, password=PASSWORD, *, at=T0, name="sato", **kw):
    return users.verify_login(db, name, password, now=at, max_failed=3, lockout_minutes=15,
                              remote_addr="192.0.2.7", **kw)


def test_password_is_stored_as_a_scrypt_hash_never_in_plain(db):
    user, generated = users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    assert generated is None and user.role == "staff" and user.locale == "ja"
    (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("scrypt:") and PASSWORD not in stored
    assert PASSWORD not in str([tuple(r) for r in db.execute("SELECT * FROM audit_log")])


def test_a_generated_password_is_strong_and_works(db):
    user, generated = users.create_user(db, "admin", "admin", actor="cli:root")
    assert generated and len(generated) >= 16
    assert login(db, generated, name="admin").id == user.id


@pytest.mark.parametrize("password, words", [("short", "at least 10"),
                                             ("aaaaaaaaaaaa", "different characters"),
                                             ("my-sato-password", "user name"),
                                             (" leading-space1", "spaces")])
def test_password_policy(db, password, words):
    with pytest.raises(PasswordPolicyError, match=words) as info:
        users.create_user(db, "sato", "staff", password, actor="admin")
    assert info.value.field == "password"
    assert users.list_users(db) == []


def test_usernames_and_roles_are_checked(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for name, role, field in [("sato", "staff", "username"), ("", "staff", "username"),
                              ("a b", "staff", "username"), ("kato", "root", "role")]:
        with pytest.raises(UserError) as info:
            users.create_user(db, name, role, PASSWORD, actor="admin")
        assert info.value.field == field


def test_successful_login_resets_failures_and_is_audited(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    with pytest.raises(LoginRefused):
        login(db, "wrong password")
    user = login(db, at=T0 + 5)
    assert user.failed_logins == 0 and user.last_login_at == T0 + 5
    entry = audit.entries(db)[0]
    assert (entry.actor, entry.action, entry.remote_addr) == ("sato", "login", "192.0.2.7")
    assert audit.entries(db)[1].action == "login_failed"


def test_lockout_after_max_failures_refuses_even_the_right_password_until_it_expires(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for i in range(3):
        with pytest.raises(LoginRefused) as info:
            login(db, "wrong password", at=T0 + i)
        assert info.value.reason == "bad_credentials"
    with pytest.raises(LoginRefused) as info:
        login(db, at=T0 + 60)
    assert info.value.reason == "locked" and info.value.locked_until == T0 + 2 + 15 * 60
    assert audit.count(db, action="user_locked") == 1
    assert login(db, at=T0 + 2 + 15 * 60 + 1).username == "sato", "the lock expires"


def test_unknown_user_and_inactive_user_are_refused_and_audited(db):
    with pytest.raises(LoginRefused) as info:
        login(db, name="nobody")
    assert info.value.reason == "bad_credentials"
    assert audit.entries(db)[0].detail == {"reason": "unknown_user"}
    users.create_user(db, "admin", "admin", PASSWORD, actor="cli")
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    users.deactivate(db, "sato", actor="admin")
    with pytest.raises(LoginRefused) as info:
        login(db)
    assert info.value.reason == "inactive"
    with pytest.raises(LoginRefused) as info:
        login(db, "wrong password")
    assert info.value.reason == "bad_credentials", "a wrong password says nothing more"


def test_set_password_replaces_the_hash_and_lifts_a_lockout(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for i in range(3):
        with pytest.raises(LoginRefused):
            login(db, "wrong password", at=T0 + i)
    users.set_password(db, "sato", "a new password 7", actor="admin")
    with pytest.raises(LoginRefused):
        login(db, at=T0 + 10)
    assert login(db, "a new password 7", at=T0 + 10).username == "sato"
    assert audit.count(db, action="user_password") == 1


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(db):
    users.create_user(db, "admin", "admin", PASSWORD, actor="cli")
    with pytest.raises(UserError, match="last admin"):
        users.set_role(db, "admin", "staff", actor="admin")
    with pytest.raises(UserError, match="last admin"):
        users.deactivate(db, "admin", actor="admin")
    users.create_user(db, "boss", "admin", PASSWORD, actor="admin")
    assert users.set_role(db, "admin", "staff", actor="boss").role == "staff"
    actions = [e.action for e in audit.entries(db)]
    assert actions[:2] == ["user_role", "user_create"]


def test_cli_user_add_generates_a_password_without_a_terminal_and_lists(tmp_path):
    config = tmp_path / "tsunagu.toml"
    config.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "m0"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["user", "add", "admin", "--role", "admin",
                                  "--config", str(config)])
    assert result.exit_code == 0, result.output
    password = result.stdout.split("password for admin: ")[1].split()[0]
    database = db_mod.connect(tmp_path / "t.db")
    assert users.verify_login(database, "admin", password).role == "admin"
    assert audit.entries(database, action="user_create")[0].actor.startswith("cli:")
    result = runner.invoke(main, ["user", "add", "sato", "--role", "staff", "--password-stdin",
                                  "--config", str(config)], input=PASSWORD + "\n")
    assert result.exit_code == 0 and "password for" not in result.stdout
    assert users.verify_login(database, "sato", PASSWORD).username == "sato"
    result = runner.invoke(main, ["user", "add", "kato", "--role", "staff", "--password-stdin",
                                  "--config", str(config)], input="short\n")
    # In the configured language (Japanese by default: issue 11).
    assert result.exit_code == 1 and "10文字以上" in result.output
    result = runner.invoke(main, ["user", "list", "--config", str(config)])
    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["admin", "sato"]
    result = runner.invoke(main, ["user", "passwd", "sato", "--generate", "--config",
                                  str(config)])
    new = result.stdout.split("password for sato: ")[1].split()[0]
    assert users.verify_login(database, "sato", new).username == "sato"


def test_parallel_wrong_guesses_cannot_race_past_the_limit(db, tmp_path):
    import threading
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    reasons: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        own = db_mod.connect(tmp_path / "t.db")    # one connection per process/thread
        try:
            users.verify_login(own, "sato", f"wrong password {i}", now=T0, max_failed=3)
        except LoginRefused as exc:
            with lock:
                reasons.append(exc.reason)
        finally:
            own.conn.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(reasons) == ["bad_credentials"] * 3 + ["locked"] * 5
    assert audit.count(db, action="user_locked") == 1
