"""The CLI as the office manager meets it (issue 11, finding 15): it finds the appliance's
configuration, writes readable text to a terminal, speaks the configured language with the
same words as the web UI and `check`, and `sim-ctl` takes a number as people type it."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest
from click.testing import CliRunner

from appliance import broadcasts, config as config_mod, contacts, wording
from appliance.cli import main
from appliance.db import connect, write
from tests.daemon_harness import ROOT

CONFIG = """\
database = "t.db"
clinic_name = "つなぐ透析クリニック"
language = "{language}"
[[modem]]
name = "m0"
port = "/dev/null"
"""


@pytest.fixture
def appliance_config(tmp_path):
    """A configuration with one queued broadcast to 髙橋 一郎; returns a function that
    writes it in a language and gives its path."""
    def make(language: str = "ja"):
        path = tmp_path / "tsunagu.toml"
        path.write_text(CONFIG.format(language=language), encoding="utf-8")
        config = config_mod.load(path)
        db = connect(config.database)
        if not contacts.list_contacts(db):
            group = contacts.create_group(db, "月水金 午前", actor="test", kind="shift")
            contacts.add_contact(db, name="髙橋 一郎", kana="タカハシ イチロウ",
                                 phone="090-1000-0036", actor="test", group_ids=[group.id])
            with write(db) as conn:
                plan = broadcasts.plan(conn, config, text="本日の透析は中止です",
                                       group_ids=[group.id], now=1_800_000_000)
                broadcasts.create(conn, plan, title="停電", actor="test", now=1_800_000_000)
        db.conn.close()
        return path
    return make


def test_broadcast_list_finds_the_appliance_config_without_being_told(appliance_config,
                                                                       monkeypatch):
    path = appliance_config()
    monkeypatch.delenv("TSUNAGU_CONFIG", raising=False)
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", path)
    result = CliRunner().invoke(main, ["broadcast", "list"])
    assert result.exit_code == 0, result.output
    assert "停電" in result.output


def test_without_any_config_the_message_names_the_default_place(tmp_path, monkeypatch):
    monkeypatch.delenv("TSUNAGU_CONFIG", raising=False)
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", tmp_path / "missing.toml")
    result = CliRunner().invoke(main, ["broadcast", "list"])
    assert result.exit_code == 1
    assert "missing.toml" in result.output and "--config" in result.output


@pytest.mark.parametrize("language", ["ja", "en"])
def test_broadcast_list_speaks_the_configured_language_with_the_shared_words(
        appliance_config, language):
    path = appliance_config(language)
    result = CliRunner().invoke(main, ["broadcast", "list", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert wording.state("queued", language) in result.output
    assert wording.word(wording.COUNTS, "people", language) in result.output
    if language == "ja":
        assert "people" not in result.output and "queued" not in result.output


def test_broadcast_show_names_states_like_the_web_ui(appliance_config):
    path = appliance_config("ja")
    result = CliRunner().invoke(main, ["broadcast", "show", "1", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "送信待ち" in result.output and "queued" not in result.output


def test_contacts_export_to_a_terminal_is_readable_text(appliance_config):
    """On a terminal the roster is shown as text, not CP932 bytes (mojibake in UTF-8)."""
    path = appliance_config()
    controller, terminal = pty.openpty()
    env = {**os.environ, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    process = subprocess.Popen([sys.executable, "-m", "appliance.cli", "contacts", "export",
                                "--config", str(path)], stdout=terminal, stderr=terminal,
                               stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(terminal)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the command has finished
                break
            if not chunk:
                break
            out += chunk
    finally:
        process.wait(30)
        os.close(controller)
    assert process.returncode == 0, out
    assert "髙橋 一郎" in out.decode("utf-8")


def test_contacts_export_to_a_file_or_pipe_stays_cp932_for_excel(appliance_config):
    path = appliance_config()
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "contacts", "export",
                             "--config", str(path)], capture_output=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "タカハシ".encode("cp932") in result.stdout


@pytest.fixture
def controlled_sim(tmp_path):
    """A simulated modem with its control socket, as `tsunagu sim` starts it."""
    from modem.sim import SimulatedModem
    modem = SimulatedModem(tmp_path / "modem0", control=True).start()
    try:
        yield modem
    finally:
        modem.stop()


@pytest.mark.parametrize("command", [["set-outcome", "090-1000-0036", "failed"],
                                     ["fail-sends", "500", "--number", "090-1000-0036"]])
def test_sim_ctl_takes_a_number_as_people_type_it(controlled_sim, tmp_path, command):
    result = CliRunner().invoke(main, ["sim-ctl", "--link", str(tmp_path / "modem0"), *command])
    assert result.exit_code == 0, result.output
    if command[0] == "set-outcome":
        assert controlled_sim.network.outcome_for("+819010000036") == "failed"
    else:
        assert controlled_sim.network.fault_for("+819010000036") == 500


def test_sim_ctl_refuses_a_number_that_is_not_a_mobile(controlled_sim, tmp_path):
    result = CliRunner().invoke(main, ["sim-ctl", "--link", str(tmp_path / "modem0"),
                                       "set-outcome", "03-1234-5678", "failed"])
    assert result.exit_code == 2
    assert "NUMBER" in result.output


@pytest.mark.parametrize("text, ja, en", [
    ("最後の管理者の権限は外せません (cannot demote the last admin)",
     "最後の管理者の権限は外せません", "cannot demote the last admin"),
    ("the test group 「テスト」 has no active members / テストグループに連絡先がありません",
     "テストグループに連絡先がありません", "the test group 「テスト」 has no active members"),
    ("no value for {time}: fill it in / {time} の値が入力されていません",
     "{time} の値が入力されていません", "no value for {time}: fill it in"),
    ("just one language", "just one language", "just one language"),
])
def test_a_message_written_in_both_languages_is_shown_in_the_readers(text, ja, en):
    assert wording.in_language(text, "ja") == ja and wording.in_language(text, "en") == en


def test_audit_details_show_moments_lists_and_api_names_in_words():
    """The audit page showed '予約日時: 1796195762.30', '理由: late' and JSON lists."""
    import datetime as dt
    from zoneinfo import ZoneInfo
    tokyo = ZoneInfo("Asia/Tokyo")
    at = dt.datetime(2027, 1, 20, 10, 0, tzinfo=tokyo).timestamp()
    shown = dict(wording.audit_details(
        {"appointment_at": at, "reason": "late", "events": ["message.sent", "reply.received"],
         "scopes": ["read", "reminders"], "groups_created": ["月水金 午前", "本院"]},
        "ja", tokyo))
    assert shown["予約日時"] == "2027-01-20 10:00"
    assert shown["理由"] == "予約時刻までに送れませんでした"
    assert shown["通知する出来事"] == "メッセージを送信した、返信が届いた"
    assert shown["権限"] == "送信状況・受信箱・状態を見る、予約のお知らせを登録する"
    assert "月水金 午前、本院" in shown.values()
    english = dict(wording.audit_details({"appointment_at": at, "reason": "late"}, "en", tokyo))
    assert english == {"appointment": "2027-01-20 10:00",
                       "reason": "not sent in time before the appointment"}
