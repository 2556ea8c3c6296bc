"""The daemon's job guard: a failing job is logged, recorded for staff, paused when it keeps
failing, and never stops the loop; time is injected."""
from __future__ import annotations

from appliance import check, jobs
from appliance.daemon import Daemon
from appliance.db import write


class Boom(RuntimeError):
    pass


def test_a_failing_job_is_recorded_and_the_next_job_still_runs(db):
    guard = jobs.Jobs(lambda: db)
    ran = []

    def broken():
        raise Boom("the disk said no")

    assert guard.run("schedules", broken, now=100.0) is None
    assert guard.run("followups", lambda: ran.append(1) or "ok", now=100.0) == "ok"
    [problem] = jobs.problems(db.conn)
    assert (problem.name, problem.failures) == ("schedules", 1)
    assert "the disk said no" in problem.error and ran == [1]


def test_a_job_failing_again_and_again_is_paused_with_doubling_and_resumes(db):
    guard = jobs.Jobs(lambda: db)
    calls = []

    def broken():
        calls.append(1)
        raise Boom("still broken")

    for t in range(jobs.PAUSE_AFTER):
        guard.run("requests", broken, now=float(t))
    assert len(calls) == jobs.PAUSE_AFTER
    # Paused: not run again until the pause is over (no tight loop over a broken row).
    paused_at = float(jobs.PAUSE_AFTER - 1)
    guard.run("requests", broken, now=paused_at + jobs.PAUSE_FIRST - 0.1)
    assert len(calls) == jobs.PAUSE_AFTER and guard.paused("requests", paused_at + 1)
    guard.run("requests", broken, now=paused_at + jobs.PAUSE_FIRST)
    assert len(calls) == jobs.PAUSE_AFTER + 1
    row = db.conn.execute("SELECT paused_until FROM daemon_jobs").fetchone()
    assert row[0] == paused_at + jobs.PAUSE_FIRST + 2 * jobs.PAUSE_FIRST   # doubled
    # It works again: shown as recovered, no longer a problem, no pause.
    guard.run("requests", lambda: None, now=1000.0)
    assert jobs.problems(db.conn) == [] and not guard.paused("requests", 1000.0)


def test_a_failure_that_cannot_be_recorded_is_still_logged_and_survived(db, caplog):
    caplog.set_level("INFO")
    with write(db) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON daemon_jobs "
                     "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    guard = jobs.Jobs(lambda: db)

    def broken():
        raise Boom("first")

    assert guard.run("heartbeat", broken, now=1.0) is None
    assert "job heartbeat failed" in caplog.text and "could not be recorded" in caplog.text


def test_the_readiness_check_warns_of_a_failing_job_in_japanese(db, tmp_path):
    from appliance import config as config_mod
    path = tmp_path / "t.toml"
    path.write_text(f'database = "{db.conn.execute("PRAGMA database_list").fetchone()[2]}"\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(path)
    jobs.Jobs(lambda: db).run("followup:7", lambda: 1 / 0, now=1.0)
    [line] = check.check_jobs(db.conn, config, "ja")
    assert line.status == check.WARNING and "一斉送信 #7 の再送" in line.message
    assert "送信は続いています" in line.message


def test_one_broken_follow_up_does_not_stop_the_others(db, tmp_path, monkeypatch):
    from appliance import broadcasts, config as config_mod
    path = tmp_path / "t.toml"
    path.write_text('database = "x.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
                    encoding="utf-8")
    daemon = Daemon(config_mod.load(path))
    daemon.db = db
    made = []
    monkeypatch.setattr(broadcasts, "due_followups", lambda conn, now: [1, 2])

    def create_followup(conn, broadcast_id, now):
        if broadcast_id == 1:
            raise Boom("broadcast 1 is broken")
        made.append(broadcast_id)
        return 99
    monkeypatch.setattr(broadcasts, "create_followup", create_followup)
    daemon.run_timers(10.0)
    assert made == [2]
    assert [p.name for p in jobs.problems(db.conn)] == ["followup:1"]
