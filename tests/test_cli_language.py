"""Every command the office manager runs speaks the configured language (issue 11: "CLI output
follows the configured language"): with `language = "ja"` a whole session of contacts,
reminders, API tokens, emergency codes, backup and restore, and the audit log prints no
English sentence, and with `language = "en"` no Japanese one — only the data (names,
groups, the messages) stays as it was written."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from appliance import config as config_mod, contacts
from appliance.cli import main
from appliance.db import connect

CONFIG = """\
database = "data/t.db"
clinic_name = "つなぐ透析クリニック"
language = "{language}"
[backup]
directory = "backups"
[[modem]]
name = "m0"
port = "/dev/null"
"""

ROSTER = ("患者ID,氏名,フリガナ,携帯電話,グループ\r\n"
          "P001,山田 太郎,ヤマダ タロウ,090-1000-0001,月水金 午前\r\n"      # the same
          "P002,髙橋 一郎,タカハシ イチロウ,090-1000-0099,月水金 午前\r\n"  # a new number
          "P003,佐藤 花子,サトウ ハナコ,090-1000-0003,火木土 午後\r\n")     # new, new group
BAD_ROSTER = "患者ID,氏名,携帯電話\r\nP009,鈴木 次郎,03-1234-5678\r\n"   # a landline
APPOINTMENTS = ("患者ID,種類,予約日,時刻\r\n"
                "P001,採血,2099/01/20,10:00\r\n"
                "P003,採血,2099/01/21,11:00\r\n")

# What stays as written in either language: the data, and names of things that have no
# other name (units, formats, the scopes and events an API token is given).
DATA = ("山田 太郎", "髙橋 一郎", "佐藤 花子", "ヤマダ タロウ", "タカハシ イチロウ", "サトウ ハナコ",
        "月水金 午前", "火木土 午後", "採血", "検査の日です", "はい / 変更したい",
        "存在しない", "検査システム", "再診", "患者ID", "氏名", "フリガナ", "携帯電話", "グループ", "種類", "予約日", "時刻", "→")
LATIN_ALLOWED = {"KiB", "SMS", "SIM", "CSV", "API", "Webhook", "cp932", "utf", "dry", "run",
                 "failed", "of", "read", "send", "lab", "tsunagu", "token", "list", "http",
                 "all", "message", "sent", "delivered", "reply", "received", "modem", "state",
                 "broadcast", "finished", "audit", "head", "age", "min"}


def english_words(text: str) -> list[str]:
    """Latin-script words in *text* that are not in the allowed list (the walk test's rule
    for the web UI's Japanese pages)."""
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in LATIN_ALLOWED]


def japanese(text: str) -> list[str]:
    return re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e、。「」（）：]+", text)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_session_of_commands_speaks_only_the_configured_language(tmp_path, monkeypatch,
                                                                   language):
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG.format(language=language), encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    group = contacts.create_group(db, "月水金 午前", actor="test", kind="shift")
    for pid, name, kana, phone in [("P001", "山田 太郎", "ヤマダ タロウ", "090-1000-0001"),
                                   ("P002", "髙橋 一郎", "タカハシ イチロウ", "090-1000-0002")]:
        contacts.add_contact(db, name=name, kana=kana, phone=phone, patient_id=pid,
                             actor="test", group_ids=[group.id])
    db.conn.close()
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(BAD_ROSTER, encoding="utf-8")
    (tmp_path / "appointments.csv").write_text(APPOINTMENTS, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()

    session = [
        (0, ["contacts", "import", "--dry-run", "roster.csv"]),
        (0, ["contacts", "import", "roster.csv"]),
        (1, ["contacts", "import", "bad.csv"]),
        (0, ["contacts", "list"]),
        (1, ["contacts", "list", "--group", "存在しない"]),
        (0, ["contacts", "export", "-o", "out/roster.csv"]),
        (0, ["reminders", "kind-add", "採血", "--text", "{name}様 {date} {time} 検査の日です",
             "--days-before", "1", "--at", "17:00", "--quiet", "21:00-08:00",
             "--choices", "はい / 変更したい"]),
        (2, ["reminders", "kind-add", "再診", "--template", "存在しない", "--days-before", "1",
             "--at", "17:00"]),
        (0, ["reminders", "kinds"]),
        (0, ["reminders", "import", "--dry-run", "appointments.csv"]),
        (0, ["reminders", "import", "appointments.csv"]),
        (0, ["reminders", "list"]),
        (0, ["api-token", "add", "lab", "--scope", "read"]),
        (0, ["api-token", "webhook", "lab", "--url", "http://127.0.0.1:9/events"]),
        (0, ["api-token", "list"]),
        (0, ["api-token", "deliveries"]),
        (2, ["api-token", "resend"]),
        (1, ["api-token", "revoke", "検査システム"]),
        (0, ["api-token", "revoke", "lab"]),
        (0, ["user", "add", "nurse1", "--role", "staff", "--generate"]),
        (0, ["user", "list"]),
        (1, ["user", "passwd", "nurse9", "--generate"]),
        (0, ["user", "reset-2fa", "nurse1"]),
        (0, ["user", "deactivate", "nurse1"]),
        (0, ["emergency-codes", "new", "--count", "2"]),
        (0, ["emergency-codes", "status"]),
        (0, ["backup"]),
        (0, ["audit", "verify"]),
        (0, ["audit", "export", "--out", "out/audit.csv"]),
        (2, ["audit", "export", "--since", "31/01/2027"]),
        (1, ["restore", "--yes", "out/no-such-backup.age"]),
    ]
    runner = CliRunner()
    spoken = []
    monkeypatch.chdir(tmp_path)
    for status, command in session:
        result = runner.invoke(main, [*command, "--config", str(path)])
        assert result.exit_code == status, (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            (command, result.exception)
        spoken.append((command, result.output.replace(str(tmp_path), "")))

    for command, output in spoken:
        for datum in DATA:
            output = output.replace(datum, "")
        # A command's syntax (a command in `backticks`, the usage line, options, the help
        # command) is what is typed.
        output = re.sub(r"(?m)^(?:使い方|Usage): .*$|'[^']*--help'|`[^`]*`|--[\w-]+", "", output)
        # File names and paths are the files' names, not words of a language.
        output = re.sub(r"[\w.-]*/[\w./-]+|[\w.-]+\.(?:csv|age|db|toml)\b", "", output)
        # Emergency codes and token secrets are random letters: not words of a language.
        output = re.sub(r"\b[A-Z0-9]{4}(?:-[A-Z0-9]{4})+\b|tsu_[A-Za-z0-9_-]+|whsec_\S+|"
                        r"[0-9a-f]{16}…|(?<=パスワード：)\S+|(?<=password: )\S+", "", output)
        # Account names are typed by the admin; a user's web UI language is its code.
        output = re.sub(r"\bnurse\d\b|\b(?:ja|en)\b", "", output)
        if language == "ja":
            assert not english_words(output), (command, output)
            assert japanese(output), (command, output)
        else:
            assert not japanese(output), (command, output)


# A mistake in the file, one per line: what the office manager meets after editing it.
MISTAKES = [
    ('[daemon]\npoll_interval = -1\n', "daemon.poll_interval", "0 より大きい数"),
    ('[daemon]\npoll_intervall = 30\n', "daemon.poll_intervall", "この項目はありません"),
    ('[web]\nport = "8080"\n', "web.port", "整数で書いてください"),
    ('[web]\ntwo_factor = "sometimes"\n', "web.two_factor", "のどれかにしてください"),
    ('[ring]\nquiet_hours = "21-8"\n', "ring.quiet_hours", "21:00-08:00"),
    ('[[modem]]\nname = "m1"\nport = "/dev/null"\npin = "12"\n', "modem[1].pin", "4〜8桁"),
    ('timezone = "Tokyo"\n', "timezone", "タイムゾーンはありません"),
]


@pytest.mark.parametrize("mistake, key, says", MISTAKES)
def test_a_mistake_in_the_config_is_told_in_its_language_naming_the_key(
        tmp_path, mistake, key, says):
    # The language comes from the file that has the mistake: Japanese unless it asks for
    # English.
    runner = CliRunner()
    for language in ("ja", "en"):
        body = CONFIG.format(language=language)
        if mistake.startswith("[[modem]]"):
            body += "\n" + mistake
        elif mistake.startswith("["):
            body = body.replace("[backup]", mistake.rstrip("\n") + "\n[backup]")
        else:
            body = mistake + body
        path = tmp_path / f"{language}.toml"
        path.write_text(body, encoding="utf-8")
        result = runner.invoke(main, ["check", "--config", str(path)])
        assert result.exit_code == 1, result.output
        assert key in result.output and str(path) in result.output, result.output
        if language == "ja":
            assert says in result.output and "設定ファイル" in result.output, result.output
            # What is typed stays as typed: the file, the key, the keys allowed there,
            # quoted values and [sections].
            rest = result.output.replace(str(path), "").replace(key, "")
            rest = re.sub(r"ここに書けるのは [^）]*|'[^']*'|\"[^\"]*\"|\[\[?\w+\]?\]|"
                          r"\bpin =|\bPIN\b", "", rest)
            assert not english_words(rest), result.output
        else:
            assert not japanese(result.output), result.output


def test_a_config_file_that_cannot_be_read_is_told_in_japanese(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_bytes("database = 'x'\nlanguage = \"en\"\n[[modem]\n".encode())
    result = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert result.exit_code == 1
    assert "TOML として正しくありません" in result.output, result.output
    missing = CliRunner().invoke(main, ["check", "--config", str(tmp_path / "none.toml")])
    assert "このファイルがありません" in missing.output, missing.output


@pytest.mark.parametrize("command, says", [
    (["user", "add", "nurse1", "--role", "boss"], "'boss' は選べません（選べるのは 'admin', "
                                                  "'office', 'staff'）"),
    (["emergency-codes", "new", "--count", "many"], "'many' は整数ではありません"),
    (["contacts", "import", "no-such.csv"], "'no-such.csv' がありません"),
])
def test_clicks_own_checks_of_a_value_are_told_in_japanese(tmp_path, monkeypatch, command, says):
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG.format(language="ja"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*command, "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert says in result.output and "エラー:" in result.output, result.output


@pytest.mark.parametrize("language", ["ja", "en"])
def test_broadcast_send_tells_its_notes_in_the_configured_language(tmp_path, monkeypatch,
                                                                   language):
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG.format(language=language).replace(
        'port = "/dev/null"', 'port = "/dev/null"\ndaily_limit = 3'), encoding="utf-8")
    db = connect(config_mod.load(path).database)
    group = contacts.create_group(db, "月水金 午前", actor="test", kind="shift")
    for i in range(3):
        contacts.add_contact(db, name=f"患者{i}", phone=f"090-1000-000{i}", actor="test",
                             group_ids=[group.id])
    db.conn.close()
    monkeypatch.chdir(tmp_path)
    text = "停電のため本日の透析は中止します。" * 5       # over 70 characters: two parts each
    result = CliRunner().invoke(main, ["broadcast", "send", "--group", "月水金 午前",
                                       "--text", text, "--yes", "--config", str(path)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines()
             if line.startswith(("注意:", "warning:"))]
    # Over the daily limit, how much shorter would reach everyone now, and in two parts.
    assert len(notes) == 3, result.output
    for note in notes:
        if language == "ja":
            assert not english_words(note.replace("SIM", "")), note
        else:
            assert not japanese(note), note
    assert ("最初の1名（全3名中）に今送り" if language == "ja" else "the first 1 of 3 people") \
        in notes[0]
    assert ("今すぐ全員（3名）に送れます" if language == "ja" else "it would go to everyone (3) now") \
        in notes[1]
    # The time to send is when the last can go, not thousands of minutes.
    summary = result.output.splitlines()[0]
    assert ("最後の方へは" if language == "ja" else "the last at about") in summary, summary
