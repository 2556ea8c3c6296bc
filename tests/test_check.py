"""`tsunagu check` against real conditions: the daemon and a simulated modem as subprocesses,
faults set through the simulator's control socket, results read from the exit status."""
from __future__ import annotations

import json
import subprocess

import pytest

from appliance import check, config as config_mod
from appliance.db import connect, write
from tests.daemon_harness import DaemonProcess, Sim, tsunagu_command, wait_until, write_config


@pytest.fixture
def rig(tmp_path):
    sim = Sim(tmp_path, "modem0").start()
    path = write_config(tmp_path, [sim], daemon={"poll_interval": 1})
    with open(path, "a", encoding="utf-8") as f:
        f.write('\n[check]\nheartbeat_max_age = 3\n\n[test]\ngroup = "テスト"\n')
    db = connect(config_mod.load(path).database)
    with write(db) as conn:
        group = conn.execute("INSERT INTO groups (name, kind) VALUES ('テスト', 'test')").lastrowid
        for i, number in enumerate(["+819011110001", "+819011110002"]):
            cid = conn.execute("INSERT INTO contacts (name, phone, created_at, updated_at) "
                               "VALUES (?, ?, 0, 0)", [f"職員{i}", number]).lastrowid
            conn.execute("INSERT INTO contact_groups VALUES (?, ?)", [cid, group])
    daemon = DaemonProcess(path, tmp_path).start()
    try:
        yield sim, daemon, path, db
    finally:
        daemon.stop()
        sim.stop()
        db.conn.close()


def run_check(path, *args) -> tuple[int, dict]:
    result = subprocess.run([*tsunagu_command(), "check", "--config", str(path), "--json", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["results"]}


def test_send_test_delivers_to_the_test_group_and_then_everything_is_ok(rig):
    sim, daemon, path, db = rig
    status, report = run_check(path, "--send-test", "--timeout", "60")
    assert status == 0, report
    assert by_name(report)["send_test"]["status"] == 0
    assert {m["to"] for m in sim.events("message")} == {"+819011110001", "+819011110002"}
    status, report = run_check(path)
    assert status == 0 and by_name(report)["last_test"]["status"] == 0
    assert db.conn.execute("SELECT count(*) FROM check_runs").fetchone()[0] == 2


def test_without_a_recent_test_the_check_warns(rig):
    status, report = run_check(rig[2], "--live")
    assert status == 1 and by_name(report)["last_test"]["status"] == 1


def test_a_weak_signal_is_a_warning(rig):
    sim, _, path, _ = rig
    sim.control().set_signal(csq=1)  # -111 dBm, below the configured -110
    status, report = run_check(path, "--live")
    assert by_name(report)["modem:modem0"]["status"] == 1 and status == 1


@pytest.mark.parametrize("fault, words", [
    ("remove_sim", "SIMカード"), ("set_registration", "圏外"), ("unplug", "接続されていません")])
def test_a_modem_that_cannot_send_is_critical(rig, fault, words):
    sim, _, path, _ = rig
    control = sim.control()
    if fault == "set_registration":
        control.set_registration(state="searching")
    else:
        getattr(control, fault)()
    status, report = run_check(path, "--live")
    modem = by_name(report)["modem:modem0"]
    assert status == 2 and modem["status"] == 2 and words in modem["message"], report


def test_a_stopped_daemon_is_critical(rig):
    _, daemon, path, _ = rig
    run_check(path, "--live")  # the daemon has answered once
    assert daemon.stop() == 0
    status, report = wait_until(
        lambda: (lambda r: r if by_name(r[1])["daemon"]["status"] == 2 else None)(
            run_check(path)), 30, "the heartbeat to go stale")
    assert status == 2
    status, report = run_check(path, "--live", "--timeout", "2")
    assert status == 2 and by_name(report)["live"]["status"] == 2


def test_each_check_has_a_japanese_line_for_people(rig):
    sim, _, path, _ = rig
    result = subprocess.run([*tsunagu_command(), "check", "--config", str(path), "--live"],
                            capture_output=True, text=True, timeout=120)
    assert "デーモン稼働中" in result.stdout and "==> 注意" in result.stdout


def test_overall_status_is_the_worst_result():
    results = [check.Result("a", 0, ""), check.Result("b", 2, ""), check.Result("c", 1, "")]
    assert check.overall(results) == 2 and check.overall([]) == 0


def one_modem(tmp_path):
    """(config, database) of an appliance with one modem, m0."""
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
                    encoding="utf-8")
    config = config_mod.load(path)
    return config, connect(config.database)


def test_a_weak_signal_still_counts_as_able_to_send(tmp_path):
    from appliance import health
    config, db = one_modem(tmp_path)
    import time
    now = time.time()
    with write(db) as conn:
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [now, now])
        conn.execute("INSERT INTO modem_status (name, port, ready, reason, checked_at) VALUES "
                     "('m0', '/dev/null', 0, 'weak_signal', ?)", [now])
    h = health.read_health(db, config, now)
    assert h.can_send and not h.ready_modems


# -- issue 12: the clock must be synchronised for TOTP codes -------------------------------

def test_an_unsynchronised_clock_is_a_warning_that_names_ntp_and_two_step_codes(monkeypatch):
    from appliance import check, clock
    assert check.check_clock(1_800_000_000, "ja", False).status == check.WARNING
    assert "2段階認証" in check.check_clock(1_800_000_000, "ja", False).message
    assert check.check_clock(1_800_000_000, "en", True).status == check.OK
    assert check.check_clock(1_800_000_000, "en", None).status == check.OK
    assert clock.synchronised() is True                    # told by the environment
    monkeypatch.delenv(clock.SYNC_ENV)
    assert clock.synchronised((lambda: None, lambda: False)) is False
    assert clock.synchronised((lambda: True, lambda: False)) is True
    assert clock.synchronised((lambda: None,)) is None


def test_the_readiness_check_asks_the_clock_seam(tmp_path):
    from appliance import check, config as config_mod
    from appliance.db import connect
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n')
    config = config_mod.load(path)
    db = connect(config.database)
    results = {r.name: r for r in check.run_checks(db, config, 1_800_000_000,
                                                    clock_sync=lambda: False)}
    assert results["clock"].status == check.WARNING


def test_timedatectls_answer_is_read_and_a_failure_is_unknown():
    import subprocess
    from appliance import clock

    def answer(text, code=0):
        return lambda *a, **k: subprocess.CompletedProcess(a, code, stdout=text, stderr="")
    if clock.shutil.which("timedatectl") is None:
        return   # nothing to call here; the other reader is the kernel's
    assert clock.timedatectl_synchronised(answer("yes\n")) is True
    assert clock.timedatectl_synchronised(answer("no\n")) is False
    assert clock.timedatectl_synchronised(answer("", 1)) is None


def test_a_modem_waiting_on_a_send_says_so_rather_than_not_checked_recently(tmp_path):
    # Found in the demo with a hung modem: for two minutes the dashboard said "the daemon
    # has not checked it recently", while its worker was waiting on AT+CMGS.
    from appliance import health
    config, db = one_modem(tmp_path)
    now = 1_800_000_000.0
    with write(db) as conn:
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [now, now])
        conn.execute("INSERT INTO modem_status (name, port, ready, reason, checked_at) VALUES "
                     "('m0', '/dev/null', 1, NULL, ?)", [now - 95])
        bid = conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at) "
                           "VALUES ('t', 't', 't', ?)", [now]).lastrowid
        rid = conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, "
                           "parts_count, state, modem) VALUES (?, 'p', '+819000000000', 't', "
                           "1, 'sending', 'm0')", [bid]).lastrowid
        conn.execute("INSERT INTO parts (recipient_id, seq, state, modem, sending_at) "
                     "VALUES (?, 1, 'sending', 'm0', ?)", [rid, now - 90])
    h = health.read_health(db, config, now)
    [m] = h.modems
    assert (m.ready, m.reason) == (False, "awaiting_answer")
    # Slow is not stopped (a congested network): it still counts as able to send, a warning.
    assert h.can_send
    line = next(r for r in check.run_checks(db, config, now) if r.name == "modem:m0")
    assert "送信への応答を待っています" in line.message and line.status == check.WARNING
    # Answered (the part submitted): not polled for a while is "stale" again.
    db.conn.execute("UPDATE parts SET state = 'submitted'")
    [m] = health.read_health(db, config, now).modems
    assert m.reason == "stale"
    # Polled a moment ago, a send handed over 40 s ago and unanswered: waiting, too.
    db.conn.execute("UPDATE modem_status SET checked_at = ?", [now - 1])
    db.conn.execute("UPDATE parts SET state = 'sending', sending_at = ?", [now - 40])
    [m] = health.read_health(db, config, now).modems
    assert (m.ready, m.reason) == (False, "awaiting_answer")
    db.conn.execute("UPDATE parts SET sending_at = ?", [now - 5])    # an ordinary send
    [m] = health.read_health(db, config, now).modems
    assert (m.ready, m.reason) == (True, None)
