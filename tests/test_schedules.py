"""Recurring broadcasts fire at their times in the clinic's timezone, survive a restart, and
follow the missed-run policy; time is injected, never waited for."""
from __future__ import annotations

import datetime as dt

import pytest

from appliance import audit, config as config_mod, schedules
from appliance.daemon import Daemon
from appliance.db import connect, write

JST = dt.timezone(dt.timedelta(hours=9))


def at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=JST).timestamp()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
                    encoding="utf-8")
    return config_mod.load(path)


@pytest.fixture
def db(config):
    database = connect(config.database)
    with write(database) as conn:
        group = conn.execute("INSERT INTO groups (name, kind) VALUES ('月水金', 'shift')").lastrowid
        cid = conn.execute("INSERT INTO contacts (name, phone, created_at, updated_at) VALUES "
                           "('患者', '+819012345678', 0, 0)").lastrowid
        conn.execute("INSERT INTO contact_groups VALUES (?, ?)", [cid, group])
    return database


def add_monday_notice(db, config, created: float) -> int:
    with write(db) as conn:
        return schedules.add(conn, config, name="採血のお知らせ", cron="0 17 * * mon",
                             groups=["月水金"], text="{name}様 明日は採血日です", actor="admin",
                             now=created)


def run(db, config, now: float) -> list[int]:
    with write(db) as conn:
        return schedules.run_due(conn, config, now)


def test_a_weekly_schedule_fires_at_17_00_tokyo_time_once(db, config):
    add_monday_notice(db, config, at("2026-11-23 09:00"))   # a Monday morning
    assert run(db, config, at("2026-11-23 16:59")) == []
    [first] = run(db, config, at("2026-11-23 17:00"))
    assert run(db, config, at("2026-11-23 17:01")) == []
    text = db.conn.execute("SELECT text FROM recipients WHERE broadcast_id = ?", [first]).fetchone()[0]
    assert text == "患者様 明日は採血日です"
    assert len(run(db, config, at("2026-11-30 17:00"))) == 1      # next Monday


def test_a_restart_in_between_neither_loses_nor_repeats_a_run(db, config, tmp_path):
    add_monday_notice(db, config, at("2026-11-23 09:00"))
    db.conn.close()
    reopened = connect(config.database)     # the daemon restarted: only the database remains
    assert len(run(reopened, config, at("2026-11-23 17:00"))) == 1
    reopened.conn.close()
    again = connect(config.database)
    assert run(again, config, at("2026-11-23 17:00")) == []


def test_a_run_missed_by_a_short_outage_is_sent_when_back(db, config):
    add_monday_notice(db, config, at("2026-11-23 09:00"))
    assert len(run(db, config, at("2026-11-23 17:40"))) == 1


def test_runs_missed_for_long_are_skipped_and_audited_never_sent_in_a_burst(db, config):
    add_monday_notice(db, config, at("2026-11-01 09:00"))
    assert run(db, config, at("2026-11-24 08:00")) == []     # four Mondays missed, all late
    missed = [e for e in audit.entries(db) if e.action == "schedule_missed"]
    assert missed and missed[0].detail["skipped"] == 4
    assert len(run(db, config, at("2026-11-30 17:00"))) == 1


def test_a_bad_cron_line_is_refused_naming_the_field(db, config):
    with write(db) as conn, pytest.raises(schedules.ScheduleError) as refused:
        schedules.add(conn, config, name="x", cron="every monday", groups=["月水金"],
                      text="x", actor="a", now=0)
    assert refused.value.field == "cron"


def test_the_daemon_timer_loop_runs_due_schedules(db, config):
    add_monday_notice(db, config, at("2026-11-23 09:00"))
    daemon = Daemon(config)
    daemon.db = db
    daemon.run_timers(at("2026-11-23 17:00"))
    assert db.conn.execute("SELECT state FROM broadcasts").fetchone()[0] == "queued"


def test_schedule_cli_adds_lists_and_refuses_a_bad_cron(db, config):
    from click.testing import CliRunner

    from appliance.cli import main
    runner = CliRunner()
    ok = runner.invoke(main, ["schedule", "add", "採血", "--config", str(config.path), "--cron",
                              "0 17 * * mon", "--group", "月水金", "--text", "明日は採血日です"])
    assert ok.exit_code == 0, ok.output
    listing = runner.invoke(main, ["schedule", "list", "--config", str(config.path)])
    assert "月 17:00" in listing.output and "次回" in listing.output   # in words (issue 11)
    bad = runner.invoke(main, ["schedule", "add", "x", "--config", str(config.path), "--cron",
                               "61 * * * *", "--group", "月水金", "--text", "x"])
    assert bad.exit_code == 1 and "cron" in bad.output


# -- a schedule that cannot be sent is refused when saved, and never stops the others -------

@pytest.mark.parametrize("text, why", [
    ("本日の会計は { 窓口 } で", "{"),
    ("{name}様 {date}は採血日です", "{date}"),
    ("{nmae}様 明日は採血日です", "{nmae}"),
])
def test_a_schedule_whose_text_cannot_be_sent_is_refused_when_saved(db, config, text, why):
    with pytest.raises(schedules.ScheduleError) as refused:
        with write(db) as conn:
            schedules.add(conn, config, name="会計", cron="0 17 * * mon", groups=["月水金"],
                          text=text, actor="admin", now=at("2026-11-23 09:00"))
    assert refused.value.field == "text" and why in str(refused.value)
    assert db.conn.execute("SELECT count(*) FROM schedules").fetchone()[0] == 0


def test_a_template_needing_a_date_cannot_be_scheduled_nor_edited_into_one(db, config):
    from appliance import templates
    needs_date = templates.create_template(db, "採血日", "{name}様 {date}は採血日です",
                                           actor="admin", clinic="つなぐ")
    with pytest.raises(schedules.ScheduleError) as refused:
        with write(db) as conn:
            schedules.add(conn, config, name="採血", cron="0 17 * * mon", groups=["月水金"],
                          template_id=needs_date.id, actor="admin", now=at("2026-11-23 09:00"))
    assert refused.value.field == "template_id" and "{date}" in str(refused.value)
    plain = templates.create_template(db, "採血日2", "{name}様 明日は採血日です",
                                      actor="admin", clinic="つなぐ")
    with write(db) as conn:
        schedules.add(conn, config, name="採血", cron="0 17 * * mon", groups=["月水金"],
                      template_id=plain.id, actor="admin", now=at("2026-11-23 09:00"))
    with pytest.raises(templates.TemplateError) as edit:
        templates.update_template(db, plain.id, text="{name}様 {date}は採血日です",
                                  actor="admin", clinic="つなぐ")
    assert "定期送信「採血」" in str(edit.value) and edit.value.field == "text"


def _saved_by_hand(db, name: str, text: str, created: float, cron: str = "0 17 * * mon") -> int:
    """A row as an older version (or a hand edit) could have left it: add() refuses it."""
    with write(db) as conn:
        return conn.execute(
            "INSERT INTO schedules (name, cron, text, groups, created_by, created_at) "
            "VALUES (?, ?, ?, '[\"月水金\"]', 'admin', ?)", [name, cron, text, created]).lastrowid


def test_a_schedule_that_fails_is_recorded_on_its_row_and_the_others_still_run(db, config):
    bad = _saved_by_hand(db, "会計", "本日の会計は { 窓口 } で", at("2026-11-23 09:00"))
    add_monday_notice(db, config, at("2026-11-23 09:00"))
    created = run(db, config, at("2026-11-23 17:00"))
    assert len(created) == 1                           # the good one was sent
    row = db.conn.execute("SELECT * FROM schedules WHERE id = ?", [bad]).fetchone()
    assert row["failures"] == 1 and "{ 窓口 }" in row["last_error"]
    assert row["last_run_at"] == at("2026-11-23 17:00")  # not retried every few seconds
    assert run(db, config, at("2026-11-23 17:01")) == []
    assert "schedule_failed" in audit_actions(db)
    assert [s["id"] for s in schedules.failed(db.conn)] == [bad]


def test_a_schedule_that_works_again_is_no_longer_shown_failed(db, config):
    sid = _saved_by_hand(db, "会計", "本日の会計は { 窓口 } で", at("2026-11-23 09:00"))
    run(db, config, at("2026-11-23 17:00"))
    with write(db) as conn:   # staff fix the text
        conn.execute("UPDATE schedules SET text = '本日の会計は窓口で' WHERE id = ?", [sid])
    assert len(run(db, config, at("2026-11-30 17:00"))) == 1
    assert schedules.failed(db.conn) == []


def test_an_unreadable_cron_is_paused_and_shown_not_a_crash(db, config):
    sid = _saved_by_hand(db, "壊れた", "本日は休診です", at("2026-11-23 09:00"), cron="99 * * * *")
    assert run(db, config, at("2026-11-23 17:00")) == []
    row = db.conn.execute("SELECT enabled, failures FROM schedules WHERE id = ?", [sid]).fetchone()
    assert (row["enabled"], row["failures"]) == (0, 1)
    assert schedules.listing(db.conn, config, at("2026-11-23 17:01"))[0]["next_run_at"] is None


def audit_actions(db) -> list[str]:
    return [r[0] for r in db.conn.execute("SELECT action FROM audit_log ORDER BY id")]


def test_the_schedule_command_refuses_a_stray_brace_naming_the_field(db, config):
    from click.testing import CliRunner

    from appliance.cli import main
    result = CliRunner().invoke(main, ["schedule", "add", "会計", "--config", str(config.path),
                                       "--cron", "0 17 * * mon", "--group", "月水金",
                                       "--text", "本日の会計は { 窓口 } で"])
    assert result.exit_code != 0 and "text:" in result.output and "{ 窓口 }" in result.output
    assert db.conn.execute("SELECT count(*) FROM schedules").fetchone()[0] == 0
