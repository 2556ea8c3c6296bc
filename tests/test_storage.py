"""Storage faults in the web UI, `tsunagu check` and `tsunagu restore`: a full disk, a
read-only one and a damaged database, each made for real (tests/storage_faults.py).

What staff must get on each: a page in Japanese that says what is wrong and what to do
(never a 500, the login page included), `check` critical (exit 2) with the reason and the
remedy, and nothing already stored lost.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from appliance import config as config_mod, users
from appliance.db import connect, write
from tests.daemon_harness import tsunagu_command
from tests.storage_faults import damage, fill, read_only, small_filesystem
from tests.web_support import STAFF, csrf_token, log_in
from webui import create_app

CONFIG = """\
database = "disk/tsunagu.db"
clinic_name = "つなぐ透析クリニック"
[daemon]
runtime_directory = "run"
reserve_mb = {reserve_mb}
[check]
min_free_disk_mb = 1
[web]
secret_key_file = "secret_key"
[[modem]]
name = "m0"
port = "/dev/null"
"""


def make_config(tmp_path: Path, *, reserve_mb: int = 0) -> config_mod.Config:
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG.format(reserve_mb=reserve_mb), encoding="utf-8")
    (tmp_path / "disk").mkdir(exist_ok=True)
    return config_mod.load(path)


def seed(config: config_mod.Config) -> None:
    """A nurse and a contact, written and closed (the WAL folded into the file)."""
    db = connect(config.database)
    users.create_user(db, STAFF[0], "staff", password=STAFF[1], actor="test")
    with write(db) as conn:
        conn.execute("INSERT INTO contacts (name, phone, created_at, updated_at) "
                     "VALUES ('山田 太郎', '+819012345678', 0, 0)")
    db.conn.close()


def run_check(config: config_mod.Config) -> tuple[int, dict, str]:
    result = subprocess.run([*tsunagu_command(), "check", "--json", "--config",
                             str(config.path)], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def messages(report: dict) -> str:
    return "\n".join(r["message"] for r in report["results"] if r["status"] == 2)


def page(response) -> str:
    return response.get_data(as_text=True)


# -- a full disk -----------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    config = make_config(tmp_path)
    with small_filesystem(tmp_path / "disk", 4):
        seed(config)
        # Held open as the daemon holds it on the appliance (its -wal and -shm files exist).
        daemon_connection = connect(config.database)
        filler = fill(tmp_path / "disk")
        try:
            yield config, filler
        finally:
            daemon_connection.conn.close()


def test_on_a_full_disk_staff_still_log_in_and_every_page_says_in_japanese_to_free_space(
        full_disk):
    config, _ = full_disk
    client = create_app(config, testing=True).test_client()
    assert "空き容量" in page(client.get("/login"))  # the banner, before anyone tries
    # No reserve left to give back: the login is kept in this process (read_only_login).
    assert log_in(client, *STAFF).status_code == 302
    dashboard = client.get("/")
    assert dashboard.status_code == 200, page(dashboard)[:500]
    assert "空き容量" in page(dashboard) and "削除" in page(dashboard)


def test_check_is_critical_on_a_full_disk_and_says_to_free_space(full_disk):
    config, _ = full_disk
    status, report, _ = run_check(config)
    assert status == 2, report
    assert "空き容量" in messages(report)


def test_the_reserve_gives_a_full_disk_room_to_log_in_and_keeps_check_critical(tmp_path):
    from appliance import storage
    config = make_config(tmp_path, reserve_mb=1)
    with small_filesystem(tmp_path / "disk", 4):
        seed(config)
        assert storage.Reserve.of(config).ensure()
        daemon_connection = connect(config.database)  # as the daemon holds it
        fill(tmp_path / "disk")
        client = create_app(config, testing=True).test_client()
        first = log_in(client, *STAFF)
        # The first write that finds the disk full gives the reserve back and says so…
        assert first.status_code == 503 and "予備" in page(first)
        assert not storage.Reserve.of(config).path.exists()
        # …and the next attempt has room.
        assert log_in(client, *STAFF).status_code == 302
        status, report, _ = run_check(config)
        assert status == 2 and "予備" in messages(report)
        daemon_connection.conn.close()


def test_on_a_full_disk_with_nothing_open_the_reserve_lets_the_web_ui_open_the_database(
        tmp_path):
    from appliance import storage
    config = make_config(tmp_path, reserve_mb=1)
    with small_filesystem(tmp_path / "disk", 4):
        seed(config)  # closed: SQLite must make its -shm file to open it again
        assert storage.Reserve.of(config).ensure()
        fill(tmp_path / "disk")
        client = create_app(config, testing=True).test_client()
        assert log_in(client, *STAFF).status_code == 302
        assert not storage.Reserve.of(config).path.exists()
        assert "予備" in page(client.get("/"))  # the banner says it is running on the reserve


# -- a read-only disk --------------------------------------------------------------------------

def seed_broadcast(config: config_mod.Config) -> int:
    """Three patients and a broadcast to them, written and closed."""
    from appliance import broadcasts
    from tests.daemon_harness import seed_patients
    db = connect(config.database)
    group = seed_patients(db, 3)
    plan = broadcasts.plan(db.conn, config, text="停電のため中止です", group_ids=[group],
                           now=1_800_000_000.0)
    with write(db) as conn:
        broadcast = broadcasts.create(conn, plan, title="停電", actor="test", now=1_800_000_000.0)
    db.conn.close()
    return broadcast


@pytest.fixture
def read_only_disk(tmp_path):
    config = make_config(tmp_path)
    seed(config)
    with read_only(tmp_path / "disk"):
        yield config


def test_on_a_read_only_disk_staff_log_in_to_read_the_call_list_and_nothing_is_saved(
        tmp_path):
    # The storage page tells staff to phone the patients from the call list: the login
    # that leads to it must work while nothing can be written.
    config = make_config(tmp_path)
    seed(config)
    broadcast = seed_broadcast(config)
    with read_only(tmp_path / "disk"):
        client = create_app(config, testing=True).test_client()
        login_page = client.get("/login")
        assert login_page.status_code == 200 and "読み取り専用" in page(login_page)
        # An emergency code is used once, and its use cannot be recorded: refused, saying
        # what to do instead.
        sealed = client.post("/login/emergency", data={
            "code": "ABCD-EFGH-JKLM-NPQR", "csrf_token": csrf_token(client, "/login/emergency")})
        assert sealed.status_code == 200 and "緊急用コードは使えません" in page(sealed)
        response = log_in(client, *STAFF)
        assert response.status_code == 302, page(response)[:500]
        calls = client.get(f"/broadcasts/{broadcast}/calls")
        assert calls.status_code == 200 and "患者001 𠮷田" in page(calls)
        assert "読み取り専用" in page(calls) and "電話" in page(calls)
        assert "山田 太郎" in page(client.get("/contacts"))
        # A change meets the storage page, in Japanese, and saves nothing.
        added = client.post("/contacts/new", data={
            "name": "佐藤 花子", "phone": "090-2222-3333",
            "csrf_token": csrf_token(client, "/contacts/new")})
        assert added.status_code == 503 and "読み取り専用" in page(added)
        # A shared tablet can be logged out.
        out = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
        assert out.status_code == 302 and client.get("/contacts").status_code == 302
    db = connect(config.database)
    assert db.conn.execute("SELECT count(*) FROM contacts WHERE name = '佐藤 花子'"
                           ).fetchone()[0] == 0
    db.conn.close()


def test_on_a_read_only_disk_guessing_passwords_is_slowed_down_as_ever(tmp_path,
                                                                       read_only_disk):
    app = create_app(read_only_disk, testing=True)
    guesser, nurse = app.test_client(), app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    nurse.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    for _ in range(read_only_disk.web.max_failed_logins):
        refused = log_in(guesser, STAFF[0], "wrong-password-000")
        assert refused.status_code == 200 and "パスワードが違います" in page(refused)
    # The right password from the guessing device waits too; the nurse's own tablet does not.
    waited = log_in(guesser, *STAFF)
    assert waited.status_code == 200 and "秒待ってから" in page(waited)
    assert log_in(nurse, *STAFF).status_code == 302


def test_on_a_read_only_disk_a_verification_code_lets_in_once(tmp_path):
    import pyotp

    from tests.web_support import enrol_two_factor
    config = make_config(tmp_path)
    seed(config)
    db = connect(config.database)
    enrol_two_factor(db, STAFF[0], time.time())
    secret = db.conn.execute("SELECT totp_secret FROM users WHERE username = ?",
                             [STAFF[0]]).fetchone()[0]
    db.conn.close()
    code = pyotp.TOTP(secret).now()
    with read_only(tmp_path / "disk"):
        app = create_app(config, testing=True)
        first, second = app.test_client(), app.test_client()
        assert log_in(first, *STAFF, code=code).status_code == 302
        assert first.get("/contacts").status_code == 200
        # The same code again (someone who saw it): refused, as when it can be recorded.
        replay = log_in(second, *STAFF, code=code)
        assert replay.status_code == 200 and "確認コードが違います" in page(replay)
        # A recovery code cannot be marked used: the page says to use the app's code.
        recovery = log_in(second, *STAFF, code="ABCDE-FGHIJ")
        assert "回復コードは使えません" in page(recovery)


def test_check_is_critical_on_a_read_only_disk_with_the_reason_and_no_traceback(
        read_only_disk):
    status, report, _ = run_check(read_only_disk)
    assert status == 2, report
    assert "読み取り専用" in messages(report)


# -- a damaged database ------------------------------------------------------------------------

@pytest.mark.parametrize("header", [False, True], ids=["pages", "header"])
def test_a_damaged_database_gives_a_japanese_page_that_says_restore_never_a_500(
        tmp_path, header):
    config = make_config(tmp_path)
    seed(config)
    app = create_app(config, testing=True)
    logged_in = app.test_client()
    assert log_in(logged_in, *STAFF).status_code == 302
    damage(config.database, header=header)
    app = create_app(config, testing=True)  # a restart finds it damaged too
    client = app.test_client()
    assert client.get("/login").status_code == 200
    for response in (log_in(client, *STAFF), logged_in.get("/"),
                     logged_in.get("/contacts")):
        assert response.status_code == 503, page(response)[:500]
        assert "データベースが壊れています" in page(response)
        assert "tsunagu restore" in page(response)


def test_check_on_a_damaged_database_is_critical_and_says_tsunagu_restore(tmp_path):
    config = make_config(tmp_path)
    seed(config)
    damage(config.database)
    status, report, _ = run_check(config)
    assert status == 2, report
    assert "tsunagu restore" in messages(report)


def test_restore_replaces_a_damaged_database_and_keeps_the_damaged_file(tmp_path):
    config = make_config(tmp_path)
    seed(config)
    backup = tmp_path / "backup.db"
    source = connect(config.database)
    with connect(backup).conn as copy:
        source.conn.backup(copy)
    source.conn.close()
    damage(config.database)
    damaged = config.database.read_bytes()
    result = subprocess.run([*tsunagu_command(), "restore", str(backup), "--yes", "--config",
                             str(config.path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kept = [p for p in config.database.parent.iterdir() if ".before-restore-" in p.name
            and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    db = connect(config.database)
    assert db.conn.execute("SELECT name FROM contacts").fetchall()[0][0] == "山田 太郎"
    db.conn.close()


def test_the_dashboard_says_the_daemon_cannot_record_not_that_the_budget_is_used_up(tmp_path):
    import sqlite3

    from appliance import storage
    config = make_config(tmp_path)
    seed(config)
    client = create_app(config, testing=True).test_client()
    assert log_in(client, *STAFF).status_code == 302
    refused = sqlite3.OperationalError("disk I/O error")
    refused.sqlite_errorname = "SQLITE_IOERR_WRITE"
    storage.Watch(config).met(refused, "modem0")  # as the daemon meets a failing card
    dashboard = page(client.get("/"))
    assert "送信する前に記録できないため" in dashboard
    assert "SDカードの読み書きでエラー" in dashboard  # the banner: what is wrong, what to do
    assert "送信上限に達しました" not in dashboard
    assert json_status(client)["storage_fault"] == storage.IO_ERROR


def json_status(client) -> dict:
    return client.get("/api/status").get_json()


def test_a_job_that_meets_a_read_only_disk_is_not_paused_and_runs_again_next_time(tmp_path):
    """The daemon's job guard hands a storage fault to the storage watch: not the job's
    fault, so it is not counted or paused (it works the moment the disk takes writes)."""
    import sqlite3

    from appliance import jobs, storage
    config = make_config(tmp_path)
    seed(config)
    db = connect(config.database)
    watch = storage.Watch(config)
    guard = jobs.Jobs(lambda: db, storage=watch)
    refused = sqlite3.OperationalError("attempt to write a readonly database")
    refused.sqlite_errorname = "SQLITE_READONLY"
    calls = []

    def heartbeat():
        calls.append(1)
        if len(calls) <= jobs.PAUSE_AFTER + 1:
            raise refused
        return "written"

    for t in range(jobs.PAUSE_AFTER + 1):
        assert guard.run("heartbeat", heartbeat, now=float(t)) is None
    assert not guard.paused("heartbeat", float(jobs.PAUSE_AFTER + 1))
    assert guard.run("heartbeat", heartbeat, now=float(jobs.PAUSE_AFTER + 1)) == "written"
    assert jobs.problems(db.conn) == []  # nothing recorded against the job
    assert storage.read_daemon_status(config).fault.kind == storage.READ_ONLY
    db.conn.close()


# -- reading on a disk that refuses writes ------------------------------------------------------

def test_a_nurse_logged_in_before_the_disk_filled_still_sees_the_call_list_and_the_contacts(
        tmp_path):
    # The call list and the contacts are what staff phone patients from when the appliance
    # cannot send; recording who read them (the audit log) must not take them away.
    config = make_config(tmp_path)
    with small_filesystem(tmp_path / "disk", 4):
        seed(config)
        broadcast = seed_broadcast(config)
        db = connect(config.database)   # held open, as the daemon holds it
        client = create_app(config, testing=True).test_client()
        assert log_in(client, *STAFF).status_code == 302
        read_before = db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        fill(tmp_path / "disk")
        for path, shows in ((f"/broadcasts/{broadcast}/calls", "患者001 𠮷田"),
                            ("/contacts", "山田 太郎"), (f"/broadcasts/{broadcast}", "患者002"),
                            ("/inbox", "受信")):
            response = client.get(path)
            assert response.status_code == 200, (path, page(response)[:500])
            assert shows in page(response) and "空き容量" in page(response), path
        # Nothing half-written: the reads the disk refused are in the process log only.
        assert db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == read_before
        db.conn.close()
