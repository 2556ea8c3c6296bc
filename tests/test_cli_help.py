"""`tsunagu … --help` in the configured language (cli/help.py): every command's and
option's help has its Japanese, and click's own words around them are Japanese too."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.cli.help import texts
from appliance.cli.help_ja import HELP

# Words that stay as they are in Japanese help: names typed as they are, AT commands, units.
KEPT = re.compile(r"`[^`]*`|AT[+&\w=?\"',.-]*|[A-Z][A-Z0-9_]+\b|--?[\w-]+|\{[a-z_]+\}|"
                  r"https?://\S+|[\w./-]*\.(?:toml|csv|json|jsonl|db|age|png|log)\b|"
                  r"/[\w./-]+|\b[a-z]+_[a-z_]+\b")


def test_every_help_text_has_its_japanese():
    missing = sorted({text for _owner, _attr, text in texts(main) if text not in HELP})
    assert not missing, f"{len(missing)} help texts without Japanese, e.g. {missing[:3]}"


def test_every_option_says_what_it_is_for():
    import click
    from appliance.cli.help import walk
    silent = [f"{cmd.name} {param.opts[0]}" for cmd in walk(main) for param in cmd.params
              if isinstance(param, click.Option) and not param.hidden and not param.help]
    assert not silent, silent


def test_no_japanese_help_is_left_over_from_a_help_text_that_is_gone():
    current = {text for _owner, _attr, text in texts(main)}
    assert not set(HELP) - current, sorted(set(HELP) - current)[:3]


def test_the_japanese_help_keeps_the_placeholders_and_click_markers_of_the_english():
    for english, japanese in HELP.items():
        for placeholder in re.findall(r"\{[a-z_]+\}|\b[A-Z]{3,}\b", english):
            if placeholder in ("SMS", "USB", "SIM", "PIN", "CSV", "TOTP", "JSON", "API",
                               "IMS", "ETWS", "HTTPS", "URL", "QR", "LED", "GPIO", "NTP",
                               "UTC", "ICCID", "IMEI", "IMSI", "LTE", "CBS", "WAL", "DST",
                               "TLS", "LAN", "WPA", "SSID", "CSRF", "MHLW", "SHA"):
                continue
            assert placeholder in japanese, (english, japanese, placeholder)
        assert english.count("\b") == japanese.count("\b"), english


@pytest.fixture
def config_in(tmp_path, monkeypatch):
    def write(language: str) -> str:
        path = tmp_path / f"{language}.toml"
        path.write_text(f'language = "{language}"\ndatabase = "t.db"\n'
                        '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
        return str(path)
    monkeypatch.delenv("TSUNAGU_CONFIG", raising=False)
    return write


def test_help_is_in_japanese_with_clicks_own_words_too(config_in):
    result = CliRunner().invoke(main, ["broadcast", "send", "--config", config_in("ja"),
                                       "--help"], prog_name="tsunagu")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("使い方: tsunagu broadcast send [OPTIONS]")
    assert "オプション:" in out and "[既定: routine]" in out
    joined = "".join(line.strip() for line in out.splitlines())   # wrapped by width
    assert HELP["Queue a broadcast (the daemon sends it). Shows the plan and asks first."] \
        in joined
    assert "Show this message and exit." not in out
    # Left in English: the usage line, the choices and default of an option, names.
    body = out.split("\n", 1)[1]
    prose = KEPT.sub(" ", re.sub(r"\[[^\]]*\]", " ", body))
    assert not re.findall(r"\b[a-z]{4,}\b", prose), prose


def test_the_list_of_commands_gives_each_its_first_japanese_sentence(config_in, monkeypatch):
    monkeypatch.setenv("TSUNAGU_CONFIG", config_in("ja"))
    out = CliRunner().invoke(main, ["--help"], prog_name="tsunagu").output
    assert "コマンド:" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("broadcast "))
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", line), line
    assert "..." not in line


def test_help_is_in_english_when_the_config_says_so(config_in):
    out = CliRunner().invoke(main, ["broadcast", "send", "--config", config_in("en"),
                                    "--help"], prog_name="tsunagu").output
    assert out.startswith("Usage: tsunagu broadcast send [OPTIONS]")
    assert "Queue a broadcast (the daemon sends it). Shows the plan and asks first." in out
    assert "[default: routine]" in out


def test_japanese_help_is_wrapped_by_display_width_without_cutting_words_or_extras():
    from appliance.cli.help import width, wrap
    text = ("ループバックのSMSが戻ってくるのを待つ秒数。/dev/tsunagu-modem0 を開きます。"
            "句読点は行頭に来ません。  [既定: 90.0]")
    lines = wrap(text, 30)
    assert all(width(line) <= 30 for line in lines), lines
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert any("/dev/tsunagu-modem0" in line for line in lines)
    assert any(line.endswith("[既定: 90.0]") or line == "[既定: 90.0]" for line in lines)
    assert not any(line.startswith(("。", "、", "）")) for line in lines), lines


def test_a_group_run_without_its_command_shows_its_help_once_without_an_error(config_in,
                                                                              monkeypatch):
    monkeypatch.setenv("TSUNAGU_CONFIG", config_in("ja"))
    result = CliRunner().invoke(main, ["broadcast"], prog_name="tsunagu")
    assert result.output.startswith("使い方: tsunagu broadcast [OPTIONS] COMMAND [ARGS]...")
    assert "エラー" not in result.output and result.output.count("使い方") == 1
    assert "コマンド:" in result.output
