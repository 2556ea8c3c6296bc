"""Deployment: the systemd units pass `systemd-analyze verify`, the daemon speaks sd_notify,
the udev rule names the modem and keeps ModemManager off it, and scripts/install.sh writes
what it should into a temporary root, idempotently, and uninstalls without touching data."""
from __future__ import annotations

import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.daemon_harness import DaemonProcess, Sim, write_config

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("tsunagu-*.*"))
SERVICES = [u for u in UNITS if u.suffix == ".service"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    for unit in UNITS:
        # /opt/tsunagu (and uhubctl) do not exist here; verify checks that ExecStart can run.
        text = unit.read_text().replace("/opt/tsunagu/venv/bin/tsunagu", "/bin/true")
        text = text.replace("/usr/sbin/uhubctl", "/bin/true")
        # A template is verified as one of its instances.
        (tmp_path / unit.name.replace("@.", "@1.")).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no",
                             *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "tsunagu" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


# The one exception: the unit that sets the clock holds the capability to (and no other).
CAPABILITIES = {"tsunagu-set-clock@.service": "CapabilityBoundingSet=CAP_SYS_TIME\n"}


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_every_service_is_hardened(unit):
    text = unit.read_text()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/tsunagu",
                 "User=tsunagu", "PrivateTmp=yes", "SystemCallFilter=@system-service",
                 "IPAddressDeny=any", CAPABILITIES.get(unit.name, "CapabilityBoundingSet=\n")):
        assert line in text, f"{unit.name} lacks {line}"


SECURITY_LIMIT = 3.0  # issue 12: `systemd-analyze security` rated the backup unit 7.9


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_every_service_is_rated_at_most_3_by_systemd_analyze_security(unit, tmp_path):
    path = tmp_path / unit.name.replace("@.", "@1.")  # a template, as one of its instances
    path.write_text(unit.read_text().replace("/opt/tsunagu/venv/bin/tsunagu", "/bin/true")
                    .replace("/usr/sbin/uhubctl", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                             f"--threshold={int(SECURITY_LIMIT * 10)}", str(path)],
                            capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert score, result.stdout + result.stderr
    assert float(score.group(1)) <= SECURITY_LIMIT, result.stdout


def test_the_lan_drop_ins_of_the_web_ui_proxy_and_daemon_come_from_lan_ranges(tmp_path):
    """The web UI and Caddy answer only the LAN; the daemon reaches only the LAN (its
    webhooks to the clinic's own systems) — never the internet."""
    config = tmp_path / "etc/tsunagu/tsunagu.toml"
    config.parent.mkdir(parents=True)
    config.write_text('database = "t.db"\n[web]\nlan_ranges = ["192.168.10.0/24"]\n'
                      '[[modem]]\nname = "m0"\nport = "m0"\n', encoding="utf-8")
    assert install(tmp_path).returncode == 0
    for dropin in ("tsunagu-web.service.d/lan.conf", "caddy.service.d/tsunagu.conf",
                   "tsunagu-daemon.service.d/lan.conf"):
        text = (tmp_path / "etc/systemd/system" / dropin).read_text()
        assert "IPAddressDeny=any\nIPAddressAllow=localhost 192.168.10.0/24\n" in text, dropin


def test_install_sets_up_https_by_name_and_address(tmp_path):
    result = subprocess.run([str(ROOT / "scripts" / "install.sh"), "--root", str(tmp_path),
                             "--no-venv"], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "TSUNAGU_ADDRESSES": "192.168.1.20 fd00::20"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc/caddy/Caddyfile").read_text() == (ROOT / "deploy/Caddyfile").read_text()
    caddy = (tmp_path / "etc/systemd/system/caddy.service.d/tsunagu.conf").read_text()
    assert 'Environment="TSUNAGU_SITES=tsunagu.local, localhost, 192.168.1.20, [fd00::20]"' in caddy
    assert "Environment=TSUNAGU_UPSTREAM=127.0.0.1:8080" in caddy
    assert (tmp_path / "etc/avahi/hosts").read_text() == "192.168.1.20 tsunagu.local\n"
    config = (tmp_path / "etc/tsunagu/tsunagu.toml").read_text()
    for line in ('host = "127.0.0.1"', "session_cookie_secure = true",
                 'trusted_proxy = "127.0.0.1"'):
        assert line in config, line
    assert "would install caddy and avahi-daemon" in result.stdout


@pytest.mark.skipif(not shutil.which("caddy"), reason="Debian's caddy is not installed")
def test_the_installed_caddyfile_is_valid_for_caddy(tmp_path):
    result = subprocess.run(["caddy", "validate", "--adapter", "caddyfile", "--config",
                             str(ROOT / "deploy/Caddyfile")], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "XDG_DATA_HOME": str(tmp_path), "TSUNAGU_HTTP_PORT": "8081",
                                 "TSUNAGU_HTTPS_PORT": "8444"})
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr


def test_the_daemon_unit_is_notify_with_a_watchdog_and_serial_and_gpio_access():
    text = (ROOT / "systemd" / "tsunagu-daemon.service").read_text()
    assert "Type=notify" in text and re.search(r"WatchdogSec=\d+", text)
    assert "Restart=always" in text and "SupplementaryGroups=dialout gpio" in text
    assert "PrivateDevices" not in text  # it would hide /dev/ttyUSB* and /dev/gpiomem


def test_the_daemon_unit_makes_the_runtime_directory_its_status_file_goes_to():
    from appliance.config import DaemonConfig
    text = (ROOT / "systemd" / "tsunagu-daemon.service").read_text()
    name = re.search(r"^RuntimeDirectory=(\S+)$", text, re.M).group(1)
    assert DaemonConfig.runtime_directory == Path("/run") / name


def test_the_check_timer_runs_every_ten_minutes():
    text = (ROOT / "systemd" / "tsunagu-check.timer").read_text()
    assert "OnUnitActiveSec=10min" in text and "Persistent=true" in text


def test_the_daemon_tells_systemd_it_is_ready_and_alive(tmp_path):
    sim = Sim(tmp_path, "modem0").start()
    path = write_config(tmp_path, [sim])
    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(30)
    daemon = DaemonProcess(path, tmp_path, env={"NOTIFY_SOCKET": str(sock_path)})
    try:
        daemon.start()
        seen = set()
        while not {"READY=1", "WATCHDOG=1"} <= seen:
            seen |= set(listener.recv(4096).decode().split("\n"))
        assert daemon.stop() == 0
    finally:
        listener.close()
        sim.stop()


def test_the_udev_rule_names_the_at_port_and_keeps_modemmanager_off():
    lines = [line for line in (ROOT / "systemd" / "99-tsunagu-modem.rules").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pair = re.compile(r'^[A-Z_]+(\{[^}]+\})?(==|!=|=|\+=)"[^"]*"$')
    for line in lines:
        for token in [t.strip() for t in line.split(",")]:
            assert pair.match(token), f"not a udev key: {token!r}"
    ports = [line for line in lines if 'SUBSYSTEM=="tty"' in line]
    assert len(ports) >= 2
    for line in ports:
        assert 'SYMLINK+="tsunagu-modem0"' in line and 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line
        assert 'ENV{ID_USB_INTERFACE_NUM}=="02"' in line


def install(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / "install.sh"), "--root", str(root),
                           "--no-venv", *args], capture_output=True, text=True, timeout=120)


def test_install_into_a_root_writes_units_rule_config_and_data_dirs(tmp_path):
    result = install(tmp_path)
    assert result.returncode == 0, result.stderr
    for unit in UNITS:
        assert (tmp_path / "etc/systemd/system" / unit.name).read_text() == unit.read_text()
    assert (tmp_path / "etc/udev/rules.d/99-tsunagu-modem.rules").exists()
    assert (tmp_path / "etc/polkit-1/rules.d/50-tsunagu.rules").exists()
    config = tmp_path / "etc/tsunagu/tsunagu.toml"
    assert config.read_text() == (ROOT / "docs/config.example.toml").read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "var/lib/tsunagu").stat().st_mode) == 0o750
    assert (tmp_path / "opt/tsunagu/src/appliance/daemon.py").exists()
    assert not (tmp_path / "opt/tsunagu/src/.git").exists()
    assert "would enable and start" in result.stdout


def test_a_second_install_keeps_the_clinics_configuration_and_data(tmp_path):
    assert install(tmp_path).returncode == 0
    config = tmp_path / "etc/tsunagu/tsunagu.toml"
    config.write_text('clinic_name = "さくら透析クリニック"\n', encoding="utf-8")
    database = tmp_path / "var/lib/tsunagu/tsunagu.db"
    database.write_bytes(b"patients")
    again = install(tmp_path)
    assert again.returncode == 0 and "kept the existing" in again.stdout
    assert "さくら" in config.read_text(encoding="utf-8") and database.read_bytes() == b"patients"


def test_uninstall_removes_the_programs_but_keeps_data_and_configuration(tmp_path):
    assert install(tmp_path).returncode == 0
    (tmp_path / "var/lib/tsunagu/tsunagu.db").write_bytes(b"patients")
    result = install(tmp_path, "--uninstall")
    assert result.returncode == 0
    assert not (tmp_path / "opt/tsunagu").exists()
    assert not list((tmp_path / "etc/systemd/system").glob("tsunagu-*"))
    assert not (tmp_path / "etc/systemd/system/caddy.service.d/tsunagu.conf").exists()
    assert not (tmp_path / "etc/udev/rules.d/99-tsunagu-modem.rules").exists()
    assert not (tmp_path / "etc/polkit-1/rules.d/50-tsunagu.rules").exists()
    assert (tmp_path / "var/lib/tsunagu/tsunagu.db").read_bytes() == b"patients"
    assert (tmp_path / "etc/tsunagu/tsunagu.toml").exists()


def test_install_refuses_unknown_options(tmp_path):
    result = install(tmp_path, "--frobnicate")
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_the_scripts_pass_shellcheck():
    scripts = [f"scripts/{n}" for n in ("install.sh", "demo", "test", "_bootstrap.sh",
                                        "translations")]
    result = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout


def test_the_clock_and_usb_power_units_have_one_capability_each_and_polkit_allows_only_them():
    clock = (ROOT / "systemd" / "tsunagu-set-clock@.service").read_text()
    assert "CapabilityBoundingSet=CAP_SYS_TIME" in clock and "AmbientCapabilities=CAP_SYS_TIME" in clock
    power = (ROOT / "systemd" / "tsunagu-usb-power@.service").read_text()
    assert "CapabilityBoundingSet=\n" in power and "uhubctl" in power
    daemon = (ROOT / "systemd" / "tsunagu-daemon.service").read_text()
    assert "ProtectClock=yes" in daemon and "CapabilityBoundingSet=\n" in daemon
    rule = (ROOT / "systemd" / "50-tsunagu.rules").read_text()
    assert 'subject.user == "tsunagu"' in rule and '"start"' in rule
    assert "tsunagu-set-clock@[0-9]+" in rule and "tsunagu-usb-power@" in rule
