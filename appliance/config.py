"""The configuration file: one TOML file, parsed strictly in this one place.

`load()` turns the file into frozen dataclasses or raises `ConfigError` naming the key and the
file: an unknown key (a typo would otherwise be silently ignored), a wrong type (`true` is not
a number, `pin = 1234` is not a string), a value out of range, or a missing required key.
docs/config.example.toml is the documented reference; a test checks it loads and that every
key here appears there.

Relative paths (database, web.secret_key_file, daemon.runtime_directory, backup.directory,
backup.usb_path and a modem's port) are resolved against the directory of the config file, so a self-contained
directory such as ./var/demo works wherever it is started from.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
import zoneinfo
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .lan import DEFAULT_RANGES

ENV_VAR = "TSUNAGU_CONFIG"
# Where scripts/install.sh puts it: on the appliance every command finds it without --config.
DEFAULT_PATH = Path("/etc/tsunagu/tsunagu.toml")
RESEND_UNCERTAIN = ("emergency", "always", "never")
LANGUAGES = ("ja", "en")
# BCM numbers of the GPIO pins on a Raspberry Pi's 40-pin header.
GPIO_PINS = range(0, 28)
MODEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
SIM_PIN = re.compile(r"[0-9]{4,8}")
SECRET_KEY_BYTES = 32


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key.

    `en` and `ja` are the whole message in each language (appliance.wording.error_text
    picks one): the office manager who edits the file reads Japanese first, and the config
    that would say which language to speak is the one that could not be read."""

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None,
                 ja: str | None = None):
        self.path = path
        self.key = key
        self.reason = message
        where = f"{path}: " if path else ""
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{message}")
        self.en = str(self)
        where_ja = f"設定ファイル {path}" if path else ""
        what_ja = f"の {key}" if key and path else (f"{key}" if key else "")
        head = f"{where_ja} {what_ja}".strip()
        self.ja = f"{head}: {ja or message}" if head else (ja or message)


TWO_FACTOR_MODES = ("admin", "all", "off")
ROLES = ("admin", "office", "staff")
# The private ranges a clinic LAN uses (RFC 1918, IPv6 link-local and unique local).
DEFAULT_LAN_RANGES = DEFAULT_RANGES


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key_file: Path = Path("secret_key")
    session_timeout_minutes: int = 30
    max_failed_logins: int = 5          # failed logins per client address before it waits
    lockout_minutes: int = 5            # the longest wait for one address
    global_failed_logins: int = 50      # across all addresses: then any that failed waits
    two_factor: str = "admin"           # who must have a second factor: admin, all, off
    roster_roles: tuple[str, ...] = ("admin", "office")   # may import and export the roster
    session_cookie_secure: bool = False  # true behind the HTTPS proxy
    trusted_proxy: str = ""             # the proxy's address whose X-Forwarded-For is believed
    lan_ranges: tuple[str, ...] = DEFAULT_LAN_RANGES
    ca_certificate: Path = Path("ca.crt")   # the proxy's CA root, offered at /ca


@dataclass(frozen=True)
class DaemonConfig:
    poll_interval: float = 30
    heartbeat_interval: float = 5
    max_attempts: int = 5
    retry_backoff: float = 5
    retry_backoff_max: float = 120
    min_signal_dbm: int = -105
    resend_uncertain: str = "emergency"
    # How long one part may wait for the network's answer to AT+CMGS (Quectel: up to 120 s
    # on a congested network); two sends in a row unanswered start the recovery ladder.
    send_timeout: float = 120
    # On a RAM filesystem: where the daemon says it is alive and how its storage is, when the
    # database on the SD card cannot be written (appliance.storage).
    runtime_directory: Path = Path("/run/tsunagu")
    # Disk space kept in a file beside the database and given back to the appliance's own
    # writes when the disk fills up (appliance.storage.Reserve); 0: none.
    reserve_mb: int = 16


@dataclass(frozen=True)
class TestConfig:
    __test__ = False  # not a pytest test class, despite the name
    group: str = "テスト"
    message: str = "【{clinic}】送信テストです。受信できたら返信は不要です。"


@dataclass(frozen=True)
class GpioConfig:
    enabled: bool = True
    button_pin: int = 17
    button_hold_seconds: float = 2.0
    cooldown_seconds: float = 60
    green_led_pin: int = 27
    red_led_pin: int = 22
    buzzer_pin: int | None = None


@dataclass(frozen=True)
class CheckConfig:
    heartbeat_max_age: float = 30
    min_free_disk_mb: int = 200
    stuck_queue_minutes: int = 10
    budget_warning: int = 50


@dataclass(frozen=True)
class BackupConfig:
    directory: Path = Path("backups")
    keep: int = 7
    usb_path: Path | None = None
    key_file: Path = Path("backup.key")   # the age key backups are encrypted with


@dataclass(frozen=True)
class TimeConfig:
    # How the daemon sets the system clock from the network's time, when NTP is not
    # synchronised: a command, {epoch} replaced by the Unix time to set. The daemon itself
    # may not change the clock (ProtectClock, no capabilities); this starts a one-shot unit
    # that may, and nothing else (scripts/install.sh, systemd/tsunagu-set-clock@.service).
    setter: str = "systemctl start --no-ask-password tsunagu-set-clock@{epoch}.service"
    max_drift: float = 120       # seconds the clock may differ from the network before it is set
    check_interval: float = 600  # seconds between two looks at the network's time


@dataclass(frozen=True)
class RecoveryConfig:
    # The ladder for a modem that stops answering: resync, then AT+CFUN=1,1 (reset), then
    # the modem's power_cycle_command; each rung given this long to work before the next.
    reset: bool = True
    rung_wait: float = 60
    max_resets_per_hour: int = 3   # resets and power cycles together: never a reset loop


@dataclass(frozen=True)
class ApiConfig:
    rate_per_minute: int = 120          # a new token's requests a minute (each token its own)
    webhook_timeout: float = 10         # seconds a receiver has to answer
    webhook_retry_first: float = 10     # seconds before the first retry, doubling…
    webhook_retry_max: float = 3600     # …up to this between two tries…
    webhook_give_up_hours: float = 48   # …for this long; then failed (re-sendable)


@dataclass(frozen=True)
class RemindersConfig:
    # Parts of the SIMs' daily budget that reminders leave for emergencies and staff's own
    # broadcasts: when the budget is tight, routine reminders wait (within their window).
    reserve: int = 50


@dataclass(frozen=True)
class SmsCommandsConfig:
    """Commands by SMS from registered staff phones (appliance.sms_commands)."""
    enabled: bool = True
    code_minutes: float = 10          # a one-time code answers within this
    per_10_minutes: int = 10          # commands a number may give in ten minutes
    wrong_pins: int = 3               # in a row: commands from that number stop (admin)


WARNING_TYPES = ("earthquake", "tsunami", "earthquake_tsunami", "test", "other")


@dataclass(frozen=True)
class EtwsConfig:
    """Earthquake and tsunami warnings from the cellular network (appliance.warnings)."""
    enabled: bool = True
    types: tuple[str, ...] = ("earthquake", "tsunami", "earthquake_tsunami")
    auto_send: tuple[str, ...] = ()   # types sent to patients without a person's answer
    template: str = "地震・安否確認"   # the draft broadcast's template
    groups: tuple[str, ...] = ()      # its groups (none: the template's own)
    prompt_after_minutes: float = 10  # after the warning, before staff are asked
    event_hours: float = 6            # warnings within this of the first are one event


@dataclass(frozen=True)
class RingConfig:
    """One short call to a patient who has not answered (appliance.ringing)."""
    after_minutes: float = 15         # after the SMS went, with no report and no reply
    ring_seconds: float = 25          # how long the phone rings before the call is ended
    quiet_hours: str = "21:00-08:00"  # no calls then ("" for none)
    within_hours: float = 12          # a broadcast older than this rings nobody any more
    also_delivered: bool = False      # ring those whose SMS arrived but who did not reply
    modem: str = ""                   # a modem set aside for calls (it sends no SMS)

    @property
    def quiet(self) -> tuple[str, str] | None:
        if not self.quiet_hours:
            return None
        start, _, end = self.quiet_hours.partition("-")
        return start.strip(), end.strip()


@dataclass(frozen=True)
class ModemConfig:
    name: str
    port: str
    pin: str = ""
    pace: int = 20
    daily_limit: int = 200
    request_status_reports: bool = True
    # The last rung of the recovery ladder: cuts and restores the modem's USB power
    # ({name} and {port} are replaced); empty: no power cycle (README, "Hardware").
    power_cycle_command: str = ""


@dataclass(frozen=True)
class Config:
    path: Path
    database: Path
    modems: tuple[ModemConfig, ...]
    clinic_name: str = "つなぐ"
    timezone: str = "Asia/Tokyo"
    language: str = "ja"
    web: WebConfig = field(default_factory=WebConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    test: TestConfig = field(default_factory=TestConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    sms_commands: SmsCommandsConfig = field(default_factory=SmsCommandsConfig)
    etws: EtwsConfig = field(default_factory=EtwsConfig)
    ring: RingConfig = field(default_factory=RingConfig)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def modem(self, name: str) -> ModemConfig:
        for modem in self.modems:
            if modem.name == name:
                return modem
        raise KeyError(name)


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and check the configuration: *path*, else $TSUNAGU_CONFIG, else DEFAULT_PATH."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        if not DEFAULT_PATH.exists():
            raise ConfigError(f"no configuration file given and none at {DEFAULT_PATH}: use "
                              f"--config FILE or set {ENV_VAR} (docs/config.example.toml "
                              "documents every key)",
                              ja=f"設定ファイルの指定がなく、{DEFAULT_PATH} もありません。"
                              f"--config ファイル名 で指定するか {ENV_VAR} を設定してください"
                              "（すべての項目の説明は docs/config.example.toml にあります）")
        path = DEFAULT_PATH
    path = Path(path).expanduser().absolute()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("the configuration file does not exist", path=path,
                          ja="このファイルがありません") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file: {exc.strerror}",
                          path=path, ja=f"読めません（{exc.strerror}）") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text", path=path,
                          ja="UTF-8 の文字で保存されていません。UTF-8 で保存し直してください"
                          ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path,
                          ja=f"書き方が TOML として正しくありません（{exc}）") from None
    return _Reader(path).config(data)


def spoken_language(path: str | os.PathLike | None = None) -> str:
    """The `language` a configuration file asks for, read even when the rest of it is
    wrong, so that its errors are told in that language; 'ja' when it cannot be told."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or DEFAULT_PATH
    try:
        value = tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8")
                              ).get("language")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "ja"
    return value if value in LANGUAGES else "ja"


class _Reader:
    """Checks one parsed TOML document, key by key, against the schema below."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent

    def fail(self, key: str, message: str, ja: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=key, ja=ja)

    # -- the document ------------------------------------------------------------------

    def config(self, data: dict[str, Any]) -> Config:
        top = _Table(self, "", data, TOP_KEYS | set(SECTIONS) | {"modem"})
        database = top.path("database", required=True)
        kwargs: dict[str, Any] = {
            "clinic_name": top.text("clinic_name", default=Config.clinic_name),
            "timezone": self.timezone(top),
            "language": top.choice("language", LANGUAGES, default="ja"),
        }
        for section, reader in SECTIONS.items():
            kwargs[section] = reader(self, top.table(section))
        kwargs["web"] = self.resolve_web(kwargs["web"], database)
        kwargs["backup"] = self.resolve_backup(kwargs["backup"], database)
        self.check_pins(kwargs["gpio"])
        self.check_test_message(kwargs["test"])
        modems = self.modems(data)
        self.check_ring_modem(kwargs["ring"], modems)
        return Config(path=self.path, database=database, modems=modems, **kwargs)

    def check_ring_modem(self, ring: RingConfig, modems: tuple[ModemConfig, ...]) -> None:
        if not ring.modem:
            return
        if ring.modem not in {m.name for m in modems}:
            raise self.fail("ring.modem", f"no [[modem]] is named {ring.modem!r}",
                            f"{ring.modem!r} という名前の [[modem]] がありません")
        if len(modems) < 2:
            raise self.fail("ring.modem", "a modem set aside for calls sends no SMS: another "
                            "[[modem]] must send them (or leave ring.modem empty)",
                            "電話用に取っておくモデムは SMS を送りません。SMS を送る [[modem]] "
                            "をもう1台書くか、ring.modem を空にしてください")

    def timezone(self, top: _Table) -> str:
        name = top.text("timezone", default="Asia/Tokyo")
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise self.fail("timezone", f"unknown time zone {name!r} "
                            "(an IANA name such as \"Asia/Tokyo\")",
                            f"{name!r} というタイムゾーンはありません"
                            "（\"Asia/Tokyo\" のように書きます）") from None
        return name

    def resolve_web(self, web: WebConfig, database: Path) -> WebConfig:
        if web.secret_key_file == WebConfig.secret_key_file:
            # Not given: keep the key beside the database, which is writable by design.
            web = replace(web, secret_key_file=database.parent / "secret_key")
        if web.ca_certificate == WebConfig.ca_certificate:
            web = replace(web, ca_certificate=database.parent / "ca.crt")
        return web

    def resolve_backup(self, backup: BackupConfig, database: Path) -> BackupConfig:
        if backup.directory == BackupConfig.directory:
            backup = replace(backup, directory=database.parent / "backups")
        if backup.key_file == BackupConfig.key_file:
            # Beside the database (writable by the service), never in the backup directory
            # or on the USB stick: a copy and its key must not travel together.
            backup = replace(backup, key_file=database.parent / "backup.key")
        return backup

    def check_pins(self, gpio: GpioConfig) -> None:
        seen: dict[int, str] = {}
        for key in ("button_pin", "green_led_pin", "red_led_pin", "buzzer_pin"):
            pin = getattr(gpio, key)
            if pin is None:
                continue
            if pin in seen:
                raise self.fail(f"gpio.{key}", f"pin {pin} is already used by gpio.{seen[pin]}",
                                f"ピン {pin} は gpio.{seen[pin]} で使っています。別のピンに"
                                "してください")
            seen[pin] = key

    def check_test_message(self, test: TestConfig) -> None:
        from . import templates
        try:
            unknown = templates.unknown_placeholders(test.message)
        except templates.TemplateError as exc:
            raise self.fail("test.message", getattr(exc, "en", None) or str(exc),
                            getattr(exc, "ja", None) or str(exc)) from None
        if unknown:
            named = ", ".join("{" + name + "}" for name in unknown)
            raise self.fail("test.message", f"unknown placeholder {named} "
                            f"(allowed: {templates.allowed_list()})",
                            f"{named} は差し込めません（使えるのは "
                            f"{templates.allowed_list()}）")
        # The test button sends without anyone to ask for a date or a time.
        needed = templates.needs_values(test.message)
        if needed:
            named = ", ".join("{" + name + "}" for name in needed)
            raise self.fail("test.message", "only {clinic}, {name} and {kana} can be filled in "
                            f"for a test message, not {named}",
                            "テスト送信で差し込めるのは {clinic}・{name}・{kana} だけです"
                            f"（{named} は使えません）")

    def modems(self, data: dict[str, Any]) -> tuple[ModemConfig, ...]:
        tables = data.get("modem")
        if tables is None:
            raise self.fail("modem", "at least one [[modem]] table is required "
                            "(with name and port)",
                            "[[modem]] を1つ以上書いてください（name と port）")
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.fail("modem", "must be written as [[modem]] tables",
                            "[[modem]] の形で書いてください")
        if not tables:
            raise self.fail("modem", "at least one [[modem]] table is required",
                            "[[modem]] を1つ以上書いてください")
        modems = []
        names: dict[str, int] = {}
        for index, table in enumerate(tables):
            modem = read_modem(self, _Table(self, f"modem[{index}].", table, MODEM_KEYS))
            if modem.name in names:
                raise self.fail(f"modem[{index}].name", f"{modem.name!r} is already the name "
                                f"of modem[{names[modem.name]}]; names must be unique",
                                f"{modem.name!r} は modem[{names[modem.name]}] の名前です。"
                                "モデムごとに別の名前にしてください")
            names[modem.name] = index
            modems.append(modem)
        return tuple(modems)


class _Table:
    """Typed, range-checked access to one TOML table; refuses keys it does not know."""

    def __init__(self, reader: _Reader, prefix: str, data: Any, known: set[str]):
        self.reader = reader
        self.prefix = prefix
        if not isinstance(data, dict):
            raise reader.fail(prefix.rstrip("."), "must be a table ([section])",
                              "[見出し] の表として書いてください")
        self.data = data
        for key in data:
            if key not in known:
                allowed = ", ".join(sorted(known))
                raise reader.fail(prefix + key, f"unknown key (allowed here: {allowed})",
                                  f"この項目はありません（ここに書けるのは {allowed}）。"
                                  "つづりを確かめてください")

    def key(self, name: str) -> str:
        return self.prefix + name

    def fail(self, name: str, message: str, ja: str) -> ConfigError:
        return self.reader.fail(self.key(name), message, ja)

    def get(self, name: str, types: tuple[type, ...], type_name: str, default: Any,
            required: bool) -> Any:
        if name not in self.data:
            if required:
                raise self.fail(name, "required key is missing", "必要な項目が書かれていません")
            return default
        value = self.data[name]
        type_ja = _TYPE_NAMES_JA[type_name]
        # bool is a subclass of int in Python; in a config file `true` is never a number.
        if isinstance(value, bool) and bool not in types:
            raise self.fail(name, f"expected {type_name}, got a boolean ({str(value).lower()})",
                            f"{type_ja}で書いてください（今は {str(value).lower()}）")
        if not isinstance(value, types):
            raise self.fail(name, f"expected {type_name}, got {_describe(value)}",
                            f"{type_ja}で書いてください（今は {_describe_ja(value)}）")
        return value

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"expected a table [{name}], got {_describe(value)}",
                            f"[{name}] の表として書いてください（今は {_describe_ja(value)}）")
        return value

    def text(self, name: str, *, default: str | None = None, required: bool = False,
             allow_empty: bool = False) -> str:
        value = self.get(name, (str,), "a string", default, required)
        if value is not None and not allow_empty and not value.strip():
            raise self.fail(name, "must not be empty", "空にはできません")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, default: str) -> str:
        value = self.text(name, default=default)
        if value not in choices:
            listed = ", ".join(map(repr, choices))
            raise self.fail(name, f"must be one of {listed}, got {value!r}",
                            f"{listed} のどれかにしてください（今は {value!r}）")
        return value

    def text_list(self, name: str, *, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(name, (list,), "a list of strings", default, False)
        if not all(isinstance(item, str) for item in value):
            raise self.fail(name, "expected a list of strings, such as [\"a\", \"b\"]",
                            "文字列のリストで書いてください（[\"a\", \"b\"] のように）")
        return tuple(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        return self.get(name, (bool,), "true or false", default, False)

    def integer(self, name: str, *, default: int | None, minimum: int | None = None,
                maximum: int | None = None, required: bool = False) -> int | None:
        value = self.get(name, (int,), "an integer", default, required)
        if value is not None:
            self.check_range(name, value, minimum, maximum)
        return value

    def number(self, name: str, *, default: float, minimum: float | None = None,
               above: float | None = None, maximum: float | None = None) -> float:
        value = self.get(name, (int, float), "a number", default, False)
        if above is not None and not value > above:
            raise self.fail(name, f"must be greater than {above}, got {value}",
                            f"{above} より大きい数にしてください（今は {value}）")
        self.check_range(name, value, minimum, maximum)
        return value

    def check_range(self, name: str, value: float, minimum: float | None,
                    maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}",
                            f"{minimum} 以上にしてください（今は {value}）")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be at most {maximum}, got {value}",
                            f"{maximum} 以下にしてください（今は {value}）")

    def path(self, name: str, *, default: Path | None = None, required: bool = False
             ) -> Path | None:
        value = self.text(name, default=None, required=required)
        if value is None:
            return default
        return resolve(self.reader.base, value)

    def pin(self, name: str, *, default: int | None) -> int | None:
        return self.integer(name, default=default, minimum=GPIO_PINS.start,
                            maximum=GPIO_PINS.stop - 1)


def resolve(base: Path, value: str) -> Path:
    """A path from the config file, relative ones taken from the file's directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _describe(value: Any) -> str:
    kinds = {str: "a string", int: "an integer", float: "a number", list: "a list",
             dict: "a table"}
    for kind, text in kinds.items():
        if isinstance(value, kind):
            return f"{text} ({value!r})" if kind in (str, int, float) else text
    return type(value).__name__


_TYPE_NAMES_JA = {"a string": "文字列（\"…\" で囲む）", "an integer": "整数",
                  "a number": "数", "true or false": "true か false",
                  "a list of strings": "文字列のリスト（[\"a\", \"b\"] のように）"}


def _describe_ja(value: Any) -> str:
    kinds = {str: "文字列", int: "整数", float: "数", list: "リスト", dict: "表"}
    for kind, text in kinds.items():
        if isinstance(value, kind):
            return f"{text} {value!r}" if kind in (str, int, float) else text
    return type(value).__name__


# -- the schema: one reader per section -------------------------------------------------

TOP_KEYS = {"database", "clinic_name", "timezone", "language"}
MODEM_KEYS = {"name", "port", "pin", "pace", "daily_limit", "request_status_reports",
              "power_cycle_command"}


def read_web(reader: _Reader, data: dict[str, Any]) -> WebConfig:
    t = _Table(reader, "web.", data, {"host", "port", "secret_key_file",
                                      "session_timeout_minutes", "max_failed_logins",
                                      "lockout_minutes", "global_failed_logins", "two_factor",
                                      "roster_roles", "session_cookie_secure", "trusted_proxy",
                                      "lan_ranges", "ca_certificate"})
    roster_roles = t.text_list("roster_roles", default=WebConfig.roster_roles)
    for role in roster_roles:
        if role not in ROLES:
            raise t.fail("roster_roles", f"{role!r} is not a role (roles: {', '.join(ROLES)})",
                         f"{role!r} という役割はありません（役割: {', '.join(ROLES)}）")
    lan_ranges = t.text_list("lan_ranges", default=WebConfig.lan_ranges)
    for network in lan_ranges:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise t.fail("lan_ranges", f"{network!r} is not an address range "
                         "(such as \"192.168.1.0/24\")",
                         f"{network!r} はアドレスの範囲ではありません"
                         "（\"192.168.1.0/24\" のように書きます）") from None
    proxy = t.text("trusted_proxy", default="", allow_empty=True)
    if proxy:
        try:
            ipaddress.ip_address(proxy)
        except ValueError:
            raise t.fail("trusted_proxy", f"{proxy!r} is not an IP address "
                         "(the proxy's, such as \"127.0.0.1\")",
                         f"{proxy!r} は IP アドレスではありません"
                         "（プロキシのアドレスを \"127.0.0.1\" のように書きます）") from None
    return WebConfig(
        host=t.text("host", default=WebConfig.host),
        port=t.integer("port", default=WebConfig.port, minimum=1, maximum=65535),
        secret_key_file=t.path("secret_key_file", default=WebConfig.secret_key_file),
        session_timeout_minutes=t.integer("session_timeout_minutes", default=30, minimum=1,
                                          maximum=24 * 60),
        max_failed_logins=t.integer("max_failed_logins", default=5, minimum=1, maximum=100),
        lockout_minutes=t.integer("lockout_minutes", default=5, minimum=1, maximum=60),
        global_failed_logins=t.integer("global_failed_logins", default=50, minimum=1,
                                       maximum=100_000),
        two_factor=t.choice("two_factor", TWO_FACTOR_MODES, default="admin"),
        roster_roles=tuple(dict.fromkeys(("admin", *roster_roles))),  # admins always may
        session_cookie_secure=t.boolean("session_cookie_secure", default=False),
        trusted_proxy=proxy,
        lan_ranges=tuple(lan_ranges),
        ca_certificate=t.path("ca_certificate", default=WebConfig.ca_certificate),
    )


def read_daemon(reader: _Reader, data: dict[str, Any]) -> DaemonConfig:
    t = _Table(reader, "daemon.", data, {"poll_interval", "heartbeat_interval", "max_attempts",
                                         "retry_backoff", "retry_backoff_max", "min_signal_dbm",
                                         "resend_uncertain", "runtime_directory", "reserve_mb",
                                         "send_timeout"})
    return DaemonConfig(
        poll_interval=t.number("poll_interval", default=30, above=0),
        heartbeat_interval=t.number("heartbeat_interval", default=5, above=0),
        max_attempts=t.integer("max_attempts", default=5, minimum=1, maximum=100),
        retry_backoff=t.number("retry_backoff", default=5, minimum=0),
        retry_backoff_max=t.number("retry_backoff_max", default=120, minimum=0),
        min_signal_dbm=t.integer("min_signal_dbm", default=-105, minimum=-140, maximum=-40),
        resend_uncertain=t.choice("resend_uncertain", RESEND_UNCERTAIN, default="emergency"),
        send_timeout=t.number("send_timeout", default=120, minimum=1, maximum=600),
        runtime_directory=t.path("runtime_directory", default=DaemonConfig.runtime_directory),
        reserve_mb=t.integer("reserve_mb", default=16, minimum=0, maximum=4096),
    )


def read_test(reader: _Reader, data: dict[str, Any]) -> TestConfig:
    t = _Table(reader, "test.", data, {"group", "message"})
    return TestConfig(group=t.text("group", default=TestConfig.group),
                      message=t.text("message", default=TestConfig.message))


def read_gpio(reader: _Reader, data: dict[str, Any]) -> GpioConfig:
    t = _Table(reader, "gpio.", data, {"enabled", "button_pin", "button_hold_seconds",
                                       "cooldown_seconds", "green_led_pin", "red_led_pin",
                                       "buzzer_pin"})
    return GpioConfig(
        enabled=t.boolean("enabled", default=True),
        button_pin=t.pin("button_pin", default=17),
        button_hold_seconds=t.number("button_hold_seconds", default=2.0, above=0),
        cooldown_seconds=t.number("cooldown_seconds", default=60, minimum=0),
        green_led_pin=t.pin("green_led_pin", default=27),
        red_led_pin=t.pin("red_led_pin", default=22),
        buzzer_pin=t.pin("buzzer_pin", default=None),
    )


def read_check(reader: _Reader, data: dict[str, Any]) -> CheckConfig:
    t = _Table(reader, "check.", data, {"heartbeat_max_age", "min_free_disk_mb",
                                        "stuck_queue_minutes", "budget_warning"})
    return CheckConfig(
        heartbeat_max_age=t.number("heartbeat_max_age", default=30, above=0),
        min_free_disk_mb=t.integer("min_free_disk_mb", default=200, minimum=0),
        stuck_queue_minutes=t.integer("stuck_queue_minutes", default=10, minimum=1),
        budget_warning=t.integer("budget_warning", default=50, minimum=0),
    )


def read_backup(reader: _Reader, data: dict[str, Any]) -> BackupConfig:
    t = _Table(reader, "backup.", data, {"directory", "keep", "usb_path", "key_file"})
    return BackupConfig(
        directory=t.path("directory", default=BackupConfig.directory),
        keep=t.integer("keep", default=7, minimum=1, maximum=1000),
        usb_path=t.path("usb_path", default=None),
        key_file=t.path("key_file", default=BackupConfig.key_file),
    )


def read_time(reader: _Reader, data: dict[str, Any]) -> TimeConfig:
    t = _Table(reader, "time.", data, {"setter", "max_drift", "check_interval"})
    setter = t.text("setter", default=TimeConfig.setter, allow_empty=True)
    if setter and "{epoch}" not in setter:
        raise t.fail("setter", "the command must contain {epoch} (the Unix time to set), "
                     "or be \"\" to never set the clock",
                     "コマンドに {epoch}（合わせる時刻、Unix 時間）を入れてください。"
                     "時計を合わせないなら \"\" にします")
    return TimeConfig(setter=setter,
                      max_drift=t.number("max_drift", default=120, above=0),
                      check_interval=t.number("check_interval", default=600, above=0))


def read_recovery(reader: _Reader, data: dict[str, Any]) -> RecoveryConfig:
    t = _Table(reader, "recovery.", data, {"reset", "rung_wait", "max_resets_per_hour"})
    return RecoveryConfig(reset=t.boolean("reset", default=True),
                          rung_wait=t.number("rung_wait", default=60, above=0),
                          max_resets_per_hour=t.integer("max_resets_per_hour", default=3,
                                                        minimum=0, maximum=20))


def read_modem(reader: _Reader, t: _Table) -> ModemConfig:
    name = t.text("name", required=True)
    if not MODEM_NAME.fullmatch(name):
        raise t.fail("name", f"{name!r} is not a usable name: up to 32 letters, digits, "
                     "'-', '_' or '.', starting with a letter or digit",
                     f"{name!r} は名前に使えません。英数字と '-' '_' '.' で32文字まで、"
                     "最初は英字か数字にしてください")
    port = t.text("port", required=True)
    if "://" not in port:  # a pyserial URL (rfc2217://, socket://) is not a file path
        port = str(resolve(reader.base, port))
    pin = t.text("pin", default="", allow_empty=True)
    if pin and not SIM_PIN.fullmatch(pin):
        raise t.fail("pin", "a SIM PIN is 4 to 8 digits, written in quotes (pin = \"1234\"),"
                     " or \"\" for none",
                     "SIM の PIN は4〜8桁の数字を引用符で囲んで書きます（pin = \"1234\"）。"
                     "PIN がなければ \"\" にします")
    return ModemConfig(
        name=name,
        port=port,
        pin=pin,
        pace=t.integer("pace", default=20, minimum=1, maximum=60_000),  # high: benches
        daily_limit=t.integer("daily_limit", default=200, minimum=1, maximum=100_000),
        request_status_reports=t.boolean("request_status_reports", default=True),
        power_cycle_command=t.text("power_cycle_command", default="", allow_empty=True),
    )


def read_api(reader: _Reader, data: dict[str, Any]) -> ApiConfig:
    t = _Table(reader, "api.", data, {"rate_per_minute", "webhook_timeout",
                                      "webhook_retry_first", "webhook_retry_max",
                                      "webhook_give_up_hours"})
    return ApiConfig(
        rate_per_minute=t.integer("rate_per_minute", default=120, minimum=1, maximum=100_000),
        webhook_timeout=t.number("webhook_timeout", default=10, above=0),
        webhook_retry_first=t.number("webhook_retry_first", default=10, above=0),
        webhook_retry_max=t.number("webhook_retry_max", default=3600, above=0),
        webhook_give_up_hours=t.number("webhook_give_up_hours", default=48, above=0),
    )


def read_reminders(reader: _Reader, data: dict[str, Any]) -> RemindersConfig:
    t = _Table(reader, "reminders.", data, {"reserve"})
    return RemindersConfig(reserve=t.integer("reserve", default=50, minimum=0))


def read_sms_commands(reader: _Reader, data: dict[str, Any]) -> SmsCommandsConfig:
    t = _Table(reader, "sms_commands.", data, {"enabled", "code_minutes", "per_10_minutes",
                                               "wrong_pins"})
    return SmsCommandsConfig(
        enabled=t.boolean("enabled", default=True),
        code_minutes=t.number("code_minutes", default=10, above=0),
        per_10_minutes=t.integer("per_10_minutes", default=10, minimum=1, maximum=1000),
        wrong_pins=t.integer("wrong_pins", default=3, minimum=1, maximum=10))


def _warning_types(t: _Table, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    types = t.text_list(name, default=default)
    for kind in types:
        if kind not in WARNING_TYPES:
            raise t.fail(name, f"unknown warning type {kind!r} (known: "
                         f"{', '.join(WARNING_TYPES)})",
                         f"{kind!r} という警報の種類はありません"
                         f"（あるのは {', '.join(WARNING_TYPES)}）")
    return types


def read_etws(reader: _Reader, data: dict[str, Any]) -> EtwsConfig:
    t = _Table(reader, "etws.", data, {"enabled", "types", "auto_send", "template", "groups",
                                       "prompt_after_minutes", "event_hours"})
    types = _warning_types(t, "types", EtwsConfig.types)
    auto = _warning_types(t, "auto_send", ())
    if not_acted := [kind for kind in auto if kind not in types]:
        raise t.fail("auto_send", f"{', '.join(not_acted)} is not in etws.types: a warning "
                     "nobody acts on is never sent",
                     f"{', '.join(not_acted)} が etws.types にありません。受け取らない警報は"
                     "自動で送れません")
    return EtwsConfig(
        enabled=t.boolean("enabled", default=True), types=types, auto_send=auto,
        template=t.text("template", default=EtwsConfig.template, allow_empty=True),
        groups=t.text_list("groups", default=()),
        prompt_after_minutes=t.number("prompt_after_minutes", default=10, minimum=0),
        event_hours=t.number("event_hours", default=6, above=0))


_CLOCK = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")


def read_ring(reader: _Reader, data: dict[str, Any]) -> RingConfig:
    t = _Table(reader, "ring.", data, {"after_minutes", "ring_seconds", "quiet_hours",
                                       "within_hours", "also_delivered", "modem"})
    quiet = t.text("quiet_hours", default=RingConfig.quiet_hours, allow_empty=True).strip()
    if quiet:
        start, sep, end = quiet.partition("-")
        if not sep or not _CLOCK.fullmatch(start.strip()) or not _CLOCK.fullmatch(end.strip()) \
                or start.strip() == end.strip():
            raise t.fail("quiet_hours", f"write it as \"21:00-08:00\" (or \"\" for none), "
                         f"got {quiet!r}",
                         f"\"21:00-08:00\" のように書いてください（なければ \"\"。今は "
                         f"{quiet!r}）")
    return RingConfig(
        after_minutes=t.number("after_minutes", default=15, minimum=0),
        ring_seconds=t.number("ring_seconds", default=25, above=0),
        quiet_hours=quiet,
        within_hours=t.number("within_hours", default=12, above=0),
        also_delivered=t.boolean("also_delivered", default=False),
        modem=t.text("modem", default="", allow_empty=True))


SECTIONS = {"web": read_web, "daemon": read_daemon, "test": read_test, "gpio": read_gpio,
            "check": read_check, "backup": read_backup, "time": read_time,
            "recovery": read_recovery, "api": read_api, "reminders": read_reminders,
            "sms_commands": read_sms_commands, "etws": read_etws, "ring": read_ring}


# -- the web UI's secret key ------------------------------------------------------------

def ensure_secret_key(config: Config) -> bytes:
    """The web UI's session-signing key, created (mode 0600) on first use.

    The key lives in a file rather than in the config so that the config can be shown or
    shared without handing out the power to forge sessions. Two processes starting at once
    both get the same key: the file is written aside and linked into place, which fails if
    the other process won.
    """
    path = config.web.secret_key_file
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(SECRET_KEY_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process created it first; use theirs
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key file {path}: {exc.strerror}",
                          path=config.path, key="web.secret_key_file",
                          ja=f"鍵のファイル {path} を作れません（{exc.strerror}）") from None
    return _read_secret_key(path)


def _read_secret_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise ConfigError(f"the secret key file {path} holds fewer than 32 bytes; delete it "
                          "and a new key is created at the next start",
                          key="web.secret_key_file",
                          ja=f"鍵のファイル {path} が短すぎます（32バイト未満）。削除すると、"
                          "次の起動で新しい鍵が作られます")
    return key
