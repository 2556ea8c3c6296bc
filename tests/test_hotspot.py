"""The appliance's own Wi-Fi (issue 14 §4): scripts/install.sh --hotspot SSID writes a
NetworkManager access-point profile (into a temporary root here, like the other install steps),
keeps its passphrase on later runs, puts the hotspot's address into the HTTPS certificate and
the allowed ranges, keeps the hotspot's phones off the clinic LAN; `tsunagu hotspot qr` prints
the codes from that profile, escaped so that a phone reads back the very SSID and passphrase."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from appliance import hotspot, hotspot_qr, lan

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "etc/NetworkManager/system-connections/tsunagu-hotspot.nmconnection"
DISPATCHER = ROOT / "deploy" / "nm-dispatcher-tsunagu-hotspot"


def install(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / "install.sh"), "--root", str(root),
                           "--no-venv", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TSUNAGU_ADDRESSES": "192.168.1.20", **(env or {})})


def groups(path: Path) -> dict[str, dict[str, str]]:
    return hotspot._groups(path.read_text(encoding="utf-8"))


def test_install_with_hotspot_writes_an_access_point_profile_only_root_can_read(tmp_path):
    result = install(tmp_path, "--hotspot", "Tsunagu")
    assert result.returncode == 0, result.stderr
    profile = tmp_path / PROFILE
    keyfile = groups(profile)
    assert keyfile["connection"] | {"uuid": "-"} == {
        "id": "tsunagu-hotspot", "uuid": "-", "type": "wifi", "interface-name": "wlan0",
        "autoconnect": "true"}
    assert keyfile["wifi"] == {"mode": "ap", "band": "bg", "ssid": "Tsunagu"}
    security = keyfile["wifi-security"]
    assert {k: security[k] for k in ("key-mgmt", "proto", "pairwise", "group")} == {
        "key-mgmt": "wpa-psk", "proto": "rsn;", "pairwise": "ccmp;", "group": "ccmp;"}
    assert re.fullmatch(r"([a-hjkmnp-z2-9]{4}-){3}[a-hjkmnp-z2-9]{4}", security["psk"])
    # The hotspot hands out addresses but never takes the default route from the LAN.
    assert keyfile["ipv4"] == {"method": "shared", "address1": "10.42.0.1/24",
                               "never-default": "true"}
    # NetworkManager ignores a keyfile that anyone but root can read or write.
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert profile.stat().st_uid == os.getuid()
    assert stat.S_IMODE(profile.parent.stat().st_mode) == 0o700
    assert "hotspot: created" in result.stdout and "would bring up the hotspot" in result.stdout


def test_two_installs_never_share_a_passphrase():
    assert len({hotspot.new_passphrase() for _ in range(50)}) == 50


def test_a_second_install_keeps_the_passphrase_and_a_rotation_changes_only_it(tmp_path):
    assert install(tmp_path, "--hotspot", "Tsunagu").returncode == 0
    profile = tmp_path / PROFILE
    first = profile.read_bytes()
    again = install(tmp_path, "--hotspot", "Tsunagu")
    assert again.returncode == 0 and "hotspot: kept" in again.stdout
    assert profile.read_bytes() == first
    # An update without --hotspot leaves the Wi-Fi as it was.
    assert install(tmp_path).returncode == 0 and profile.read_bytes() == first
    before = hotspot.read(profile)
    renamed = install(tmp_path, "--hotspot", "つなぐ透析")
    assert renamed.returncode == 0 and "hotspot: changed" in renamed.stdout
    after = hotspot.read(profile)
    assert (after.ssid, after.passphrase, after.uuid) == ("つなぐ透析", before.passphrase,
                                                          before.uuid)
    rotated = install(tmp_path, "--hotspot", "つなぐ透析", "--rotate-hotspot-passphrase")
    assert rotated.returncode == 0
    last = hotspot.read(profile)
    assert last.passphrase != before.passphrase and last.uuid == before.uuid
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert not list(profile.parent.glob(".*.new"))


@pytest.mark.parametrize("ssid, says", [
    ("", "空です"),
    ("あ" * 11, "33 バイト"),        # 3 bytes a character in UTF-8
    ("clinic\nwifi", "制御文字"),
])
def test_a_bad_ssid_is_refused_naming_the_option_and_nothing_is_written(tmp_path, ssid, says):
    result = install(tmp_path, "--hotspot", ssid)
    assert result.returncode == 2
    assert "--hotspot" in result.stderr and says in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_longest_ssid_counts_bytes_not_characters(tmp_path):
    longest = "あ" * 10 + "ab"   # 32 bytes
    assert install(tmp_path, "--hotspot", longest).returncode == 0
    assert hotspot.read(tmp_path / PROFILE).ssid == longest


def test_an_ssid_that_looks_like_an_option_is_still_the_ssid(tmp_path):
    assert install(tmp_path, "--hotspot", "--clinic").returncode == 0
    assert hotspot.read(tmp_path / PROFILE).ssid == "--clinic"


def test_rotating_without_a_hotspot_is_refused(tmp_path):
    result = install(tmp_path, "--rotate-hotspot-passphrase")
    assert result.returncode == 2 and "--hotspot SSID" in result.stderr


def test_the_hotspots_address_joins_the_https_sites_and_the_allowed_ranges(tmp_path):
    config = tmp_path / "etc/tsunagu/tsunagu.toml"
    config.parent.mkdir(parents=True)
    config.write_text('database = "t.db"\n[web]\nlan_ranges = ["192.168.1.0/24"]\n',
                      encoding="utf-8")
    assert install(tmp_path, "--hotspot", "Tsunagu").returncode == 0
    caddy = (tmp_path / "etc/systemd/system/caddy.service.d/tsunagu.conf").read_text()
    assert 'Environment="TSUNAGU_SITES=tsunagu.local, localhost, 192.168.1.20, 10.42.0.1"' in caddy
    for dropin in ("tsunagu-web.service.d/lan.conf", "caddy.service.d/tsunagu.conf"):
        text = (tmp_path / "etc/systemd/system" / dropin).read_text()
        assert "IPAddressAllow=localhost 192.168.1.0/24 10.42.0.0/24\n" in text, dropin
    # tsunagu.local stays the LAN address: the hotspot's phones use the address on the sticker.
    assert (tmp_path / "etc/avahi/hosts").read_text() == "192.168.1.20 tsunagu.local\n"


def test_a_hotspot_inside_the_lan_ranges_is_not_listed_twice(tmp_path):
    config = tmp_path / "tsunagu.toml"
    config.write_text('database = "t.db"\n', encoding="utf-8")   # the defaults hold 10.0.0.0/8
    assert lan.drop_in(config, ("10.42.0.1/24",)).endswith(
        "IPAddressAllow=localhost 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fe80::/10 fc00::/7\n")


@pytest.mark.skipif(not shutil.which("caddy"), reason="Debian's caddy is not installed")
def test_caddy_issues_its_local_certificate_for_the_hotspot_address(tmp_path):
    assert install(tmp_path, "--hotspot", "Tsunagu").returncode == 0
    dropin = (tmp_path / "etc/systemd/system/caddy.service.d/tsunagu.conf").read_text()
    sites = re.search(r'TSUNAGU_SITES=([^"]+)"', dropin).group(1)
    adapted = subprocess.run(["caddy", "adapt", "--adapter", "caddyfile", "--config",
                              str(tmp_path / "etc/caddy/Caddyfile")], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                  "TSUNAGU_SITES": sites})
    assert adapted.returncode == 0, adapted.stderr
    config = json.loads(adapted.stdout)
    https = [s for s in config["apps"]["http"]["servers"].values() if ":443" in s["listen"]]
    hosts = {h for server in https for route in server["routes"]
             for match in route.get("match", []) for h in match.get("host", [])}
    assert "10.42.0.1" in hosts
    # One policy for every site, with the local CA: the address gets a certificate from it.
    policies = config["apps"]["tls"]["automation"]["policies"]
    assert [(p.get("subjects"), p["issuers"]) for p in policies] == [(None, [{"module": "internal"}])]


def test_uninstall_removes_the_hotspot_and_its_dispatcher_script(tmp_path):
    assert install(tmp_path, "--hotspot", "Tsunagu").returncode == 0
    dispatcher = tmp_path / "etc/NetworkManager/dispatcher.d/50-tsunagu-hotspot"
    assert dispatcher.read_bytes() == DISPATCHER.read_bytes()
    assert stat.S_IMODE(dispatcher.stat().st_mode) == 0o755
    pre_up = tmp_path / "etc/NetworkManager/dispatcher.d/pre-up.d/50-tsunagu-hotspot"
    assert os.readlink(pre_up) == "../50-tsunagu-hotspot" and pre_up.resolve() == dispatcher
    result = install(tmp_path, "--uninstall")
    assert result.returncode == 0 and "removed the hotspot" in result.stdout
    assert not (tmp_path / PROFILE).exists() and not dispatcher.exists()
    assert not pre_up.is_symlink()


# -- the dispatcher script: the hotspot reaches the appliance, never the clinic LAN ----------

def run_dispatcher(tmp_path: Path, connection: str, *args: str) -> list[str]:
    """Run the script as NetworkManager-dispatcher would, with an `nft` that records its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "nft.log"
    fake = bin_dir / "nft"
    # It records its arguments and, for `nft -f -`, the ruleset read from its input.
    fake.write_text(f'#!/bin/sh\n{{ echo "ARGS $*"; [ "$1" = -f ] && cat; }} >> "{log}"\n')
    fake.chmod(0o755)
    log.unlink(missing_ok=True)
    result = subprocess.run([str(DISPATCHER), *args], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CONNECTION_ID": connection})
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_the_dispatcher_drops_forwarding_from_and_to_the_hotspot_when_it_comes_up(tmp_path):
    for action in ("pre-up", "up"):
        calls = run_dispatcher(tmp_path, "tsunagu-hotspot", "wlan0", action)
        assert calls[0] == "ARGS -f -"
        ruleset = "\n".join(calls[1:])
        assert "hook forward" in ruleset
        assert 'iifname "wlan0" drop' in ruleset and 'oifname "wlan0" drop' in ruleset
    assert run_dispatcher(tmp_path, "tsunagu-hotspot", "wlan0", "down") == [
        "ARGS delete table inet tsunagu_hotspot"]


def test_the_dispatcher_leaves_every_other_connection_alone(tmp_path):
    assert run_dispatcher(tmp_path, "Wired connection 1", "eth0", "up") == []


@pytest.mark.skipif(not shutil.which("nft"), reason="nftables is not installed")
def test_the_dispatchers_ruleset_is_valid_for_nft(tmp_path):
    calls = run_dispatcher(tmp_path, "tsunagu-hotspot", "wlan0", "up")
    ruleset = tmp_path / "ruleset.nft"
    ruleset.write_text("\n".join(calls[1:]) + "\n")
    check = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True,
                           timeout=30)
    if "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert check.returncode == 0, check.stderr


# -- reading the profile back, in NetworkManager's own forms too -----------------------------

def test_the_profile_reads_back_what_was_written_whatever_the_ssid(tmp_path):
    for i, ssid in enumerate(("Clinic Wi-Fi", "a;b\\c", " lead", "つなぐ🏥", "𠮷野家", "1234")):
        path = tmp_path / f"{i}.nmconnection"
        written, what = hotspot.write(path, ssid)
        assert what == "created" and hotspot.read(path) == written


def test_the_profile_is_read_in_the_forms_networkmanager_itself_writes(tmp_path):
    path = tmp_path / "nm.nmconnection"
    # As NetworkManager rewrites a profile: long section names, ';' escaped in a string SSID
    # (then the key file's own backslash escape), a psk with a key-file escape.
    path.write_text("[connection]\nid=tsunagu-hotspot\nuuid=u\ntype=802-11-wireless\n\n"
                    "[802-11-wireless]\nmode=ap\nssid=a\\\\;b\n\n[802-11-wireless-security]\n"
                    "key-mgmt=wpa-psk\npsk=\\sspace-first\n\n[ipv4]\nmethod=shared\n",
                    encoding="utf-8")
    read = hotspot.read(path)
    assert (read.ssid, read.passphrase, read.url) == ("a;b", " space-first", "https://10.42.0.1/")
    path.write_text(path.read_text().replace("ssid=a\\\\;b", "ssid=227;129;164;"))
    assert hotspot.read(path).ssid == "つ"


def test_a_profile_that_is_not_an_access_point_is_named_as_such(tmp_path):
    path = tmp_path / "client.nmconnection"
    path.write_text("[wifi]\nmode=infrastructure\nssid=x\n[wifi-security]\npsk=12345678\n")
    with pytest.raises(hotspot.HotspotError, match="not an access-point profile"):
        hotspot.read(path)


# -- the QR codes ----------------------------------------------------------------------------

def test_the_wifi_payload_escapes_what_the_wifi_format_reserves():
    assert hotspot_qr.wifi_escape('a\\b;c,d"e:f') == 'a\\\\b\\;c\\,d\\"e\\:f'
    spot = hotspot.Hotspot(ssid='Clinic;"A"', passphrase="pw:1,2\\3", uuid="u")
    assert hotspot_qr.wifi_payload(spot) == 'WIFI:T:WPA;S:Clinic\\;\\"A\\";P:pw\\:1\\,2\\\\3;;'


def unescape_field(payload: str, key: str) -> str:
    """A phone's reading of one field of a WIFI: code (ZXing's rule: a backslash takes the
    next character literally; an unescaped ';' ends the field)."""
    match = re.search(rf"(?:^WIFI:|;){key}:((?:\\.|[^\\;])*);", payload)
    assert match, payload
    return re.sub(r"\\(.)", r"\1", match.group(1))


def decode(code) -> str:
    """What a camera reads from the code (zbar, on the code's own pixels)."""
    pyzbar = pytest.importorskip("pyzbar.pyzbar", reason="pyzbar (dev extra) and libzbar0")
    scale, border = 4, 4
    rows = []
    for row in code.matrix_iter(scale=scale, border=border):
        rows.append(bytes(0 if dark else 255 for dark in row))
    width = len(rows[0])
    found = pyzbar.decode((b"".join(rows), width, len(rows)))
    assert len(found) == 1
    return found[0].data.decode("utf-8")


@pytest.mark.parametrize("ssid, passphrase", [
    ("Tsunagu", "k7m2-x9pq-4ts8-hw3n"),
    ('つなぐ;"透析",A:B\\', 'pass;word,with:"all"\\'),
    ("𠮷の🏥", "abcdefgh"),
])
def test_a_phone_reads_back_the_very_ssid_and_passphrase(ssid, passphrase):
    spot = hotspot.Hotspot(ssid=ssid, passphrase=passphrase, uuid="u")
    payload = decode(hotspot_qr.wifi_code(spot))
    assert payload == hotspot_qr.wifi_payload(spot)
    assert payload.startswith("WIFI:T:WPA;") and payload.endswith(";;")
    assert unescape_field(payload, "S") == ssid and unescape_field(payload, "P") == passphrase
    assert decode(hotspot_qr.address_code(spot)) == "https://10.42.0.1/"


# -- the command -----------------------------------------------------------------------------

def tsunagu(tmp_path: Path, *args: str, language: str = "ja") -> subprocess.CompletedProcess:
    config = tmp_path / "tsunagu.toml"
    config.write_text(f'database = "{tmp_path / "t.db"}"\nlanguage = "{language}"\n'
                      '[[modem]]\nname = "modem0"\nport = "sim"\n',
                      encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "appliance.cli", "hotspot", "qr",
                           "--config", str(config), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_hotspot_qr_prints_the_codes_and_writes_a_private_sticker(tmp_path):
    assert install(tmp_path / "root", "--hotspot", 'Clinic;"A"').returncode == 0
    profile = tmp_path / "root" / PROFILE
    spot = hotspot.read(profile)
    sticker = tmp_path / "sticker.svg"
    result = tsunagu(tmp_path, "--profile", str(profile), "--output", str(sticker))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in ('ネットワーク名: Clinic;"A"', f"パスワード: {spot.passphrase}",
                 "① カメラで読み取り、Wi-Fiに接続", "https://10.42.0.1/",
                 "http://10.42.0.1/ca", "ステッカーを"):
        assert line in out, line
    assert out.count("▄▄▄▄▄") >= 6   # two codes, three finder patterns each
    svg = ET.parse(sticker).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{ns}g/{ns}svg")) == 2
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert f"パスワード: {spot.passphrase}" in texts and "https://10.42.0.1/" in texts
    assert 'ネットワーク名: Clinic;"A"' in texts
    assert stat.S_IMODE(sticker.stat().st_mode) == 0o600


def test_hotspot_qr_speaks_english_when_configured(tmp_path):
    assert install(tmp_path / "root", "--hotspot", "Tsunagu").returncode == 0
    result = tsunagu(tmp_path, "--profile", str(tmp_path / "root" / PROFILE), language="en")
    assert result.returncode == 0, result.stderr
    assert "Network: Tsunagu" in result.stdout and "1. Scan with the camera" in result.stdout


def test_hotspot_qr_without_a_hotspot_says_in_japanese_how_to_set_one_up(tmp_path):
    result = tsunagu(tmp_path, "--profile", str(tmp_path / "none.nmconnection"))
    assert result.returncode == 1
    assert "Wi-Fi（ホットスポット）が設定されていません" in result.stderr
    assert "install.sh --hotspot" in result.stderr


def test_hotspot_qr_refuses_a_sticker_file_it_cannot_draw(tmp_path):
    assert install(tmp_path / "root", "--hotspot", "Tsunagu").returncode == 0
    result = tsunagu(tmp_path, "--profile", str(tmp_path / "root" / PROFILE),
                     "--output", str(tmp_path / "sticker.png"))
    assert result.returncode == 2 and ".svg" in result.stderr
    assert not (tmp_path / "sticker.png").exists()
