"""The configuration file: a good file loads; every kind of mistake names key and file."""
from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from appliance import config
from appliance.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "config.example.toml"

MINIMAL = """
database = "tsunagu.db"

[[modem]]
name = "modem0"
port = "/dev/ttyUSB2"
"""


def write(tmp_path: Path, text: str, name: str = "tsunagu.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value), "the message names the file"
    return info.value


def test_the_documented_example_loads_with_every_value(tmp_path):
    cfg = config.load(EXAMPLE)
    assert cfg.database == Path("/var/lib/tsunagu/tsunagu.db")
    assert cfg.clinic_name == "つなぐ透析クリニック"
    assert cfg.timezone == "Asia/Tokyo" and cfg.language == "ja"
    assert cfg.web.port == 8080 and cfg.web.max_failed_logins == 5
    assert cfg.web.secret_key_file == Path("/var/lib/tsunagu/secret_key")
    assert cfg.daemon.resend_uncertain == "emergency"
    assert cfg.gpio.button_pin == 17 and cfg.gpio.buzzer_pin is None
    assert cfg.backup.usb_path is None and cfg.backup.keep == 7
    assert cfg.test.group == "テスト"
    assert cfg.modems == (config.ModemConfig(name="modem0", port="/dev/tsunagu-modem0", pin="",
                                             pace=20, daily_limit=200,
                                             request_status_reports=True),)


def test_every_key_the_loader_knows_is_documented_in_the_example():
    documented = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = EXAMPLE.read_text(encoding="utf-8")
    assert set(documented) == config.TOP_KEYS | set(config.SECTIONS) | {"modem"}
    for section in config.SECTIONS:
        dataclass = type(getattr(config.load(EXAMPLE), section))
        for key in dataclass.__dataclass_fields__:
            # Optional keys are documented as commented-out lines.
            assert key in documented.get(section, {}) or f"# {key} =" in text, (section, key)
    assert set(documented["modem"][0]) == config.MODEM_KEYS


def test_minimal_file_gets_defaults_and_relative_paths_resolve_against_its_directory(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    cfg = config.load(write(sub, MINIMAL.replace("/dev/ttyUSB2", "modem0")))
    assert cfg.database == sub / "tsunagu.db"
    assert cfg.modems[0].port == str(sub / "modem0")
    assert cfg.web.secret_key_file == sub / "secret_key"
    assert cfg.backup.directory == sub / "backups"
    assert cfg.timezone == "Asia/Tokyo" and cfg.zone.key == "Asia/Tokyo"
    assert cfg.modems[0].pace == 20 and cfg.modems[0].daily_limit == 200


def test_path_comes_from_the_environment_when_not_given(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("TSUNAGU_CONFIG", str(path))
    assert config.load().path == path


def test_no_path_and_no_environment_says_how_to_give_one(monkeypatch, tmp_path):
    monkeypatch.delenv("TSUNAGU_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="--config FILE or set TSUNAGU_CONFIG"):
        config.load()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as info:
        config.load(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    error = refused(tmp_path, MINIMAL + "\npace = = 3\n")
    assert "line" in str(error)


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(MINIMAL.replace("tsunagu.db", "つなぐ.db").encode("cp932"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(path)


@pytest.mark.parametrize("text, key, words", [
    ("colour = 'blue'\n" + MINIMAL, "colour", "unknown key"),
    (MINIMAL.replace("[[modem]]", "[web]\nprot = 80\n[[modem]]"), "web.prot", "unknown key"),
    (MINIMAL + "pcae = 3\n", "modem[0].pcae", "unknown key"),
    (MINIMAL + "pace = 0\n", "modem[0].pace", "at least 1"),
    (MINIMAL + "pace = true\n", "modem[0].pace", "got a boolean"),
    (MINIMAL + "pace = '20'\n", "modem[0].pace", "expected an integer"),
    (MINIMAL + "pace = 1.5\n", "modem[0].pace", "expected an integer"),
    (MINIMAL + "daily_limit = 0\n", "modem[0].daily_limit", "at least 1"),
    (MINIMAL + "request_status_reports = 1\n", "modem[0].request_status_reports",
     "true or false"),
    (MINIMAL + "pin = 1234\n", "modem[0].pin", "expected a string"),
    (MINIMAL + "pin = '12a4'\n", "modem[0].pin", "4 to 8 digits"),
    (MINIMAL.replace('port = "/dev/ttyUSB2"', 'port = ""'), "modem[0].port", "empty"),
    (MINIMAL.replace('port = "/dev/ttyUSB2"', ''), "modem[0].port", "missing"),
    (MINIMAL.replace('name = "modem0"', ''), "modem[0].name", "missing"),
    (MINIMAL.replace('name = "modem0"', 'name = "modem 0"'), "modem[0].name", "usable name"),
    (MINIMAL + '[[modem]]\nname = "modem0"\nport = "/dev/ttyUSB3"\n', "modem[1].name",
     "unique"),
    (MINIMAL + '[[modem]]\nname = "modem1"\nport = "/dev/x"\npace = -1\n', "modem[1].pace",
     "at least 1"),
    ('database = "x.db"\n', "modem", "at least one [[modem]]"),
    ('database = "x.db"\nmodem = "m"\n', "modem", "[[modem]]"),
    (MINIMAL.replace('database = "tsunagu.db"', ''), "database", "missing"),
    (MINIMAL.replace('database = "tsunagu.db"', 'database = 3'), "database", "a string"),
    ('timezone = "Asia/Tokio"\n' + MINIMAL, "timezone", "unknown time zone"),
    ('language = "fr"\n' + MINIMAL, "language", "one of"),
    ('clinic_name = ""\n' + MINIMAL, "clinic_name", "empty"),
    ("web = 3\n" + MINIMAL, "web", "table"),
    (MINIMAL.replace("[[modem]]", "[web]\nport = 70000\n[[modem]]"), "web.port", "at most"),
    (MINIMAL.replace("[[modem]]", "[web]\nport = true\n[[modem]]"), "web.port", "boolean"),
    (MINIMAL.replace("[[modem]]", "[web]\nmax_failed_logins = 0\n[[modem]]"),
     "web.max_failed_logins", "at least 1"),
    (MINIMAL.replace("[[modem]]", "[daemon]\npoll_interval = 0\n[[modem]]"),
     "daemon.poll_interval", "greater than 0"),
    (MINIMAL.replace("[[modem]]", "[daemon]\nresend_uncertain = 'sometimes'\n[[modem]]"),
     "daemon.resend_uncertain", "one of"),
    (MINIMAL.replace("[[modem]]", "[daemon]\nmin_signal_dbm = 10\n[[modem]]"),
     "daemon.min_signal_dbm", "at most"),
    (MINIMAL.replace("[[modem]]", "[gpio]\nbutton_pin = 28\n[[modem]]"),
     "gpio.button_pin", "at most 27"),
    (MINIMAL.replace("[[modem]]", "[gpio]\nbuzzer_pin = -1\n[[modem]]"),
     "gpio.buzzer_pin", "at least 0"),
    (MINIMAL.replace("[[modem]]", "[gpio]\nred_led_pin = 17\n[[modem]]"),
     "gpio.red_led_pin", "already used by gpio.button_pin"),
    (MINIMAL.replace("[[modem]]", "[gpio]\nenabled = 'yes'\n[[modem]]"),
     "gpio.enabled", "true or false"),
    (MINIMAL.replace("[[modem]]", "[check]\nmin_free_disk_mb = -5\n[[modem]]"),
     "check.min_free_disk_mb", "at least 0"),
    (MINIMAL.replace("[[modem]]", "[backup]\nkeep = 0\n[[modem]]"), "backup.keep", "at least 1"),
    (MINIMAL.replace("[[modem]]", "[test]\nmessage = '{clinc}のテスト'\n[[modem]]"),
     "test.message", "unknown placeholder {clinc}"),
    (MINIMAL.replace("[[modem]]", "[test]\nmessage = 'a { b'\n[[modem]]"),
     "test.message", "single {"),
    (MINIMAL.replace("[[modem]]", "[test]\nmessage = '{date}のテスト'\n[[modem]]"),
     "test.message", "not {date}"),
])
def test_each_mistake_names_its_key_and_the_file(tmp_path, text, key, words):
    """(The test ids are the expected key and words.)"""
    error = refused(tmp_path, text)
    assert error.key == key
    assert f": {key}: " in str(error)
    assert words in str(error)


def test_errors_come_from_one_exception_type_with_path_and_key(tmp_path):
    error = refused(tmp_path, MINIMAL + "pace = 0\n")
    assert error.path == tmp_path / "tsunagu.toml"
    assert isinstance(error, Exception) and error.key == "modem[0].pace"


def test_two_modems_with_their_own_settings(tmp_path):
    text = MINIMAL + ('pace = 6\ndaily_limit = 150\nrequest_status_reports = false\npin = "0000"\n'
                      '[[modem]]\nname = "modem1"\nport = "socket://127.0.0.1:7000"\n')
    cfg = config.load(write(tmp_path, text))
    first, second = cfg.modems
    assert (first.pace, first.daily_limit, first.request_status_reports, first.pin) == \
        (6, 150, False, "0000")
    assert second.port == "socket://127.0.0.1:7000", "a pyserial URL is not made a path"
    assert cfg.modem("modem1") is second


def test_secret_key_is_created_once_with_mode_0600_and_then_reused(tmp_path):
    cfg = config.load(write(tmp_path, MINIMAL))
    key = config.ensure_secret_key(cfg)
    path = cfg.web.secret_key_file
    assert len(key) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert config.ensure_secret_key(cfg) == key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".secret_key")], \
        "no temporary file left behind"


def test_a_truncated_secret_key_file_is_refused_not_used(tmp_path):
    cfg = config.load(write(tmp_path, MINIMAL))
    cfg.web.secret_key_file.write_text("short")
    with pytest.raises(ConfigError, match="fewer than 32 bytes"):
        config.ensure_secret_key(cfg)
