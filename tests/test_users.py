"""Web UI accounts: hashed passwords, policy, user names, the login throttle by client
address (no account lock), session versions, the last admin, audit rows, the CLI."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance import audit, db as db_mod, login_throttle, users
from appliance.cli import main
from appliance.users import LoginRefused, PasswordPolicyError, UserError

PASSWORD = "correct horse 42"
T0 = 1_750_000_000.0


POLICY = login_throttle.Policy(free=3, longest_wait=300, global_failures=50)


def login(db, password=PASSWORD, *, at=T0, name="sato", address="192.0.2.7"):
    return users.verify_login(db, name, password, now=at, throttle=POLICY, remote_addr=address)


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


@pytest.mark.parametrize("password, words", [("short", "at least 12"),
                                             ("1234567890", "at least 12"),
                                             ("password12", "at least 12"),
                                             ("password1234", "easy to guess"),
                                             ("aaaaaaaaaaaa", "easy to guess"),
                                             ("my-sato-password", "user name"),
                                             ("SATO-is-here-2027", "user name"),
                                             (" leading-space1", "spaces")])
def test_password_policy(db, password, words):
    with pytest.raises(PasswordPolicyError, match=words) as info:
        users.create_user(db, "sato", "staff", password, actor="admin")
    assert info.value.field == "password"
    assert users.list_users(db) == []


@pytest.mark.parametrize("password", ["Tr0ub4dour&3x", "sakura-clinic-2027", "correct horse 42",
                                      "kT9#mQ2v!Lz"])
def test_a_long_or_hard_to_guess_password_is_accepted(db, password):
    users.create_user(db, "sato", "staff", password, actor="admin")


def test_usernames_and_roles_are_checked(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for name, role, field in [("sato", "staff", "username"), ("", "staff", "username"),
                              ("a b", "staff", "username"), ("kato", "root", "role"),
                              ("ward/3", "staff", "username"), ("adm\u0456n", "staff", "username"),
                              ("kato\u202e", "staff", "username"), ("../x", "staff", "username"),
                              ("emergency", "staff", "username"), ("x" * 33, "staff", "username")]:
        with pytest.raises(UserError) as info:
            users.create_user(db, name, role, PASSWORD, actor="admin")
        assert info.value.field == field, name
    # NFKC: full-width letters typed with an IME are the plain ones; Japanese names are fine.
    assert users.create_user(db, "ｋａｔｏ.1", "staff", PASSWORD, actor="admin")[0].username == "kato.1"
    assert users.create_user(db, "看護師_山田", "office", PASSWORD, actor="admin")[0].role == "office"


def test_a_right_password_is_recorded_and_a_completed_login_audited(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    with pytest.raises(LoginRefused):
        login(db, "wrong password")
    user = login(db, at=T0 + 5)
    users.logged_in(db, user.id, method="password", now=T0 + 5, remote_addr="192.0.2.7")
    assert users.get_user(db, "sato").last_login_at == T0 + 5
    entry = audit.entries(db)[0]
    assert (entry.actor, entry.action, entry.remote_addr) == ("sato", "login", "192.0.2.7")
    assert audit.entries(db)[1].action == "login_failed"


def test_no_number_of_wrong_guesses_locks_the_account_for_another_device(db):
    """Finding 1: 15 guesses from the LAN used to lock admin and nurses for 15 minutes."""
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for i in range(15):
        with pytest.raises(LoginRefused):
            login(db, "wrong password", at=T0 + i, address="192.0.2.66")
    assert login(db, at=T0 + 20, address="192.0.2.7").username == "sato"


def test_a_guessing_device_waits_longer_and_longer_but_never_forever(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    for i in range(3):
        with pytest.raises(LoginRefused) as info:
            login(db, "wrong password", at=T0)
        assert info.value.reason == "bad_credentials"
    with pytest.raises(LoginRefused) as info:
        login(db, at=T0 + 1)                      # even the right password must wait
    assert info.value.reason == "throttled" and 28 <= info.value.wait <= 30
    assert "秒待って" in info.value.message("ja")
    assert login(db, at=T0 + 31).username == "sato", "the wait is 30 s after 3 failures"
    slow = login_throttle.Policy(free=3, window=3600, longest_wait=300)
    at, waits = T0 + 40, []                       # a success cleared the count; guess on
    for _ in range(8):
        with pytest.raises(LoginRefused):
            users.verify_login(db, "sato", "wrong", now=at, throttle=slow, remote_addr="x")
        waits.append(login_throttle.wait_for(db.conn, slow, "x", at))
        at += waits[-1]
    assert waits == [0, 0, 30, 60, 120, 240, 300, 300], "doubling up to the longest wait"


def test_unknown_and_known_names_get_the_same_answer_and_the_same_throttle(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    answers = []
    for name in ("sato", "nobody"):
        address = f"192.0.2.{len(answers) + 10}"
        seen = []
        for i in range(5):
            with pytest.raises(LoginRefused) as info:
                login(db, "wrong password", name=name, at=T0 + i, address=address)
            seen.append(info.value.message("ja"))
        answers.append(seen)
    assert answers[0] == answers[1]
    assert answers[0][-1] == LoginRefused("throttled", wait=28).message("ja")


def test_many_devices_guessing_at_once_slow_down_every_device_that_failed(db):
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    policy = login_throttle.Policy(free=3, longest_wait=300, global_failures=6)
    for i in range(6):                            # six devices, one guess each
        with pytest.raises(LoginRefused):
            users.verify_login(db, "sato", "guess", now=T0, throttle=policy,
                               remote_addr=f"198.51.100.{i}")
    with pytest.raises(LoginRefused) as info:     # one failure is now enough to wait
        users.verify_login(db, "sato", PASSWORD, now=T0 + 1, throttle=policy,
                           remote_addr="198.51.100.0")
    assert info.value.reason == "throttled"
    # A device that has not failed — the nurse's own tablet — still logs in at once.
    assert users.verify_login(db, "sato", PASSWORD, now=T0 + 1, throttle=policy,
                              remote_addr="192.0.2.7").username == "sato"


def test_unknown_user_and_inactive_user_are_refused_and_audited(db):
    with pytest.raises(LoginRefused) as info:
        login(db, name="nobody")
    assert info.value.reason == "bad_credentials"
    assert audit.entries(db)[0].detail == {"reason": "unknown_user"}
    users.create_user(db, "admin", "admin", PASSWORD, actor="cli")
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    users.deactivate(db, "sato", actor="admin")
    with pytest.raises(LoginRefused) as info:
        login(db, at=T0 + 1)
    assert info.value.reason == "inactive"
    with pytest.raises(LoginRefused) as info:
        login(db, "wrong password", at=T0 + 2)
    assert info.value.reason == "bad_credentials", "a wrong password says nothing more"


def test_set_password_replaces_the_hash_and_ends_every_session(db):
    user, _ = users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    users.set_password(db, "sato", "a new password 7", actor="admin")
    with pytest.raises(LoginRefused):
        login(db, at=T0 + 10)
    changed = login(db, "a new password 7", at=T0 + 10)
    assert changed.session_version == user.session_version + 1
    assert audit.count(db, action="user_password") == 1


def test_every_account_change_that_matters_ends_the_open_sessions(db):
    user, _ = users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    users.create_user(db, "boss", "admin", PASSWORD, actor="admin")
    versions = [user.session_version]
    for change in (lambda: users.set_role(db, user.id, "office", actor="boss"),
                   lambda: users.end_sessions(db, user.id, actor="sato"),
                   lambda: users.change_own_password(db, user.id, PASSWORD, "another pass 42!"),
                   lambda: users.deactivate(db, user.id, actor="boss")):
        change()
        versions.append(users.get_user_by_id(db, user.id).session_version)
    assert versions == sorted(set(versions)) and len(versions) == 5


def test_changing_ones_own_password_needs_the_current_one_and_the_policy(db):
    user, _ = users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    with pytest.raises(UserError) as info:
        users.change_own_password(db, user.id, "not it", "another pass 42!")
    assert info.value.field == "current"
    with pytest.raises(PasswordPolicyError):
        users.change_own_password(db, user.id, PASSWORD, "password1234")
    users.change_own_password(db, user.id, PASSWORD, "another pass 42!", remote_addr="192.0.2.7")
    assert login(db, "another pass 42!").username == "sato"
    assert audit.entries(db, action="password_change")[0].remote_addr == "192.0.2.7"


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
    password = result.stdout.split("admin のパスワード：")[1].split()[0]
    database = db_mod.connect(tmp_path / "t.db")
    assert users.verify_login(database, "admin", password).role == "admin"
    assert audit.entries(database, action="user_create")[0].actor.startswith("cli:")
    result = runner.invoke(main, ["user", "add", "sato", "--role", "staff", "--password-stdin",
                                  "--config", str(config)], input=PASSWORD + "\n")
    assert result.exit_code == 0 and "のパスワード：" not in result.stdout
    assert users.verify_login(database, "sato", PASSWORD).username == "sato"
    result = runner.invoke(main, ["user", "add", "kato", "--role", "staff", "--password-stdin",
                                  "--config", str(config)], input="short\n")
    # In the configured language (Japanese by default: issue 11).
    assert result.exit_code == 1 and "12文字以上" in result.output
    result = runner.invoke(main, ["user", "list", "--config", str(config)])
    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["admin", "sato"]
    result = runner.invoke(main, ["user", "passwd", "sato", "--generate", "--config",
                                  str(config)])
    new = result.stdout.split("sato のパスワード：")[1].split()[0]
    assert users.verify_login(database, "sato", new).username == "sato"


def test_parallel_wrong_guesses_cannot_race_past_the_limit(db, tmp_path):
    import threading
    users.create_user(db, "sato", "staff", PASSWORD, actor="admin")
    reasons: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        own = db_mod.connect(tmp_path / "t.db")    # one connection per process/thread
        try:
            users.verify_login(own, "sato", f"wrong password {i}", now=T0, throttle=POLICY,
                               remote_addr="192.0.2.66")
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
    assert sorted(reasons) == ["bad_credentials"] * 3 + ["throttled"] * 5
