"""The appliance's own Wi-Fi: a NetworkManager access-point profile on wlan0, so staff phones
reach the web UI when the clinic LAN is down (issue 14 §4).

scripts/install.sh --hotspot SSID writes the profile (`python3 -m appliance.hotspot write`,
standard library only: it runs with the system's python3 before the virtual environment
exists); `tsunagu hotspot qr` reads it back for the sticker. The profile is the one place the
SSID and the passphrase live: NetworkManager's keyfile, root's alone (mode 0600; NetworkManager
ignores a keyfile others can read).

Keyfile facts (nm-settings-keyfile(5), NetworkManager 1.42 as in Raspberry Pi OS 12): an
.ini-like GLib key file; `[wifi]`/`[wifi-security]` are aliases of 802-11-wireless and
802-11-wireless-security; list values end in ';'; an SSID is written as a plain string when
every byte is printable ASCII, else as the list of its bytes in decimal ("227;129;164;"), which
NetworkManager's own writer also does; `ipv4.method=shared` runs a DHCP and DNS server on the
interface (dnsmasq) and hands out addresses from the profile's address (10.42.0.1/24 unless
given).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

PROFILE_ID = "tsunagu-hotspot"
DEFAULT_PROFILE = Path("/etc/NetworkManager/system-connections") / f"{PROFILE_ID}.nmconnection"
INTERFACE = "wlan0"
# NetworkManager's own default for the first shared profile, written out so the sticker, the
# HTTPS certificate and the firewall drop-in all name the same address.
ADDRESS = ipaddress.IPv4Interface("10.42.0.1/24")

# Lower case and digits only (no shift key on a phone), without the look-alikes 0/o, 1/l/i:
# staff may have to type it from the sticker. 16 characters of 31 kinds: 79 random bits,
# far beyond guessing from a captured WPA2 handshake.
PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSPHRASE_GROUPS = 4
PASSPHRASE_GROUP_LENGTH = 4

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class HotspotError(Exception):
    """A hotspot profile that cannot be written or read; `field` names what is wrong."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NoHotspot(HotspotError):
    """No profile: the hotspot was never set up (install.sh --hotspot)."""


@dataclass(frozen=True)
class Hotspot:
    ssid: str
    passphrase: str
    uuid: str
    address: ipaddress.IPv4Interface = ADDRESS
    interface: str = INTERFACE

    @property
    def url(self) -> str:
        """The web UI's address for a phone on the hotspot (Caddy's HTTPS)."""
        return f"https://{self.address.ip}/"


def check_ssid(ssid: str) -> str:
    """*ssid* if it can be a network name: 1 to 32 bytes of UTF-8, no control characters."""
    size = len(ssid.encode("utf-8", "surrogatepass"))
    if not ssid:
        raise HotspotError("--hotspot: ネットワーク名（SSID）が空です。1〜32バイトで指定してください。"
                           " / the network name (SSID) is empty.", "ssid")
    if _CONTROL.search(ssid):
        raise HotspotError("--hotspot: ネットワーク名（SSID）に制御文字があります。"
                           " / the network name (SSID) holds a control character.", "ssid")
    try:
        ssid.encode("utf-8")
    except UnicodeEncodeError:
        raise HotspotError("--hotspot: ネットワーク名（SSID）が正しい UTF-8 ではありません。"
                           " / the network name (SSID) is not valid UTF-8.", "ssid") from None
    if size > 32:
        raise HotspotError(
            f"--hotspot: ネットワーク名（SSID）が {size} バイトあります。UTF-8 で32バイトまでです"
            f"（日本語は1文字3バイト）。短くしてください。 / the network name (SSID) is {size} "
            "bytes in UTF-8; at most 32.", "ssid")
    return ssid


def new_passphrase() -> str:
    """A fresh WPA2 passphrase, in groups of four for reading aloud and typing: k7m2-x9pq-…"""
    groups = ("".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(PASSPHRASE_GROUP_LENGTH))
              for _ in range(PASSPHRASE_GROUPS))
    return "-".join(groups)


def check_passphrase(passphrase: str) -> str:
    """WPA2-PSK's rule: 8 to 63 printable ASCII characters."""
    if not (8 <= len(passphrase) <= 63 and all(" " <= c <= "~" for c in passphrase)):
        raise HotspotError("the profile's psk is not a WPA2 passphrase (8 to 63 printable ASCII"
                           " characters): remove the profile and run install.sh --hotspot again",
                           "psk")
    return passphrase


# -- the keyfile -----------------------------------------------------------------------------

def _escape(value: str) -> str:
    """A GLib key file string value (g_key_file_set_string's escapes)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t") \
        .replace("\r", "\\r")
    return "\\s" + out[1:] if out.startswith(" ") else out


_UNESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def _unescape(value: str) -> str:
    """g_key_file_get_string's reading of a value: \\s \\n \\t \\r \\\\; others kept as is."""
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(0)), value)


def _ssid_value(ssid: str) -> str:
    raw = ssid.encode("utf-8")
    plain = all(0x20 <= b < 0x7f for b in raw) and not re.search(r"[;\\]|^\s|\s$", ssid)
    return ssid if plain else "".join(f"{b};" for b in raw)


_BYTE_LIST = re.compile(r"^\s*(\d{1,3}\s*;\s*)+$")


def _ssid_from_value(value: str) -> str:
    """The SSID of a keyfile value: a list of bytes, or a string with ';' escaped as '\\;'."""
    if _BYTE_LIST.match(value):
        numbers = [int(n) for n in value.replace(" ", "").split(";") if n]
        if all(n < 256 for n in numbers):
            try:
                return bytes(numbers).decode("utf-8")
            except UnicodeDecodeError:
                raise HotspotError("the profile's SSID is not UTF-8 text", "ssid") from None
    return _unescape(value).replace("\\;", ";")


def render(hotspot: Hotspot) -> str:
    """The keyfile's text for *hotspot*."""
    return f"""\
# Written by Tsunagu's scripts/install.sh --hotspot: the appliance's own Wi-Fi, so staff phones
# reach the web UI ({hotspot.url}) when the clinic LAN is down. `tsunagu hotspot qr` prints
# the sticker from this file. Run install.sh --hotspot again to change it.
[connection]
id={PROFILE_ID}
uuid={hotspot.uuid}
type=wifi
interface-name={hotspot.interface}
autoconnect=true

[wifi]
mode=ap
band=bg
ssid={_ssid_value(hotspot.ssid)}

[wifi-security]
key-mgmt=wpa-psk
proto=rsn;
pairwise=ccmp;
group=ccmp;
psk={_escape(hotspot.passphrase)}

[ipv4]
method=shared
address1={hotspot.address}
# The hotspot never carries the default route: the clinic LAN (eth0) keeps it.
never-default=true

[ipv6]
method=disabled
"""


def _groups(text: str) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = groups.setdefault(stripped[1:-1], {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current[key.strip()] = value.lstrip()
    return groups


def read(path: Path = DEFAULT_PROFILE) -> Hotspot:
    """The hotspot the profile at *path* describes."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoHotspot(f"no hotspot profile at {path}", "profile") from None
    except PermissionError:
        raise HotspotError(f"cannot read {path} (root's alone): run it with sudo",
                           "profile") from None
    except UnicodeDecodeError:
        raise HotspotError(f"{path} is not UTF-8 text", "profile") from None
    groups = _groups(text)
    wifi = groups.get("wifi") or groups.get("802-11-wireless") or {}
    security = groups.get("wifi-security") or groups.get("802-11-wireless-security") or {}
    connection = groups.get("connection", {})
    if wifi.get("mode") != "ap":
        raise HotspotError(f"{path} is not an access-point profile (wifi.mode={wifi.get('mode')})",
                           "mode")
    if "ssid" not in wifi or "psk" not in security:
        raise HotspotError(f"{path} lacks {'ssid' if 'ssid' not in wifi else 'psk'}",
                           "ssid" if "ssid" not in wifi else "psk")
    address = ADDRESS
    given = groups.get("ipv4", {}).get("address1")
    if given:
        try:
            address = ipaddress.IPv4Interface(given.split(",")[0].strip())
        except ValueError:
            raise HotspotError(f"{path}: ipv4.address1={given!r} is not an address",
                               "address1") from None
    return Hotspot(ssid=_ssid_from_value(wifi["ssid"]),
                   passphrase=check_passphrase(_unescape(security["psk"])),
                   uuid=connection.get("uuid", ""), address=address,
                   interface=connection.get("interface-name", INTERFACE))


def write(path: Path, ssid: str, *, rotate: bool = False) -> tuple[Hotspot, str]:
    """Write the profile for *ssid*: the passphrase and uuid of an existing profile are kept
    unless *rotate*. Returns the hotspot and what happened ('created', 'kept', 'changed')."""
    ssid = check_ssid(ssid)
    path = Path(path)
    try:
        before: Hotspot | None = read(path)
    except NoHotspot:
        before = None
    if before is None:
        hotspot, what = Hotspot(ssid, new_passphrase(), str(uuid.uuid4())), "created"
    else:
        passphrase = new_passphrase() if rotate else before.passphrase
        hotspot = Hotspot(ssid, passphrase, before.uuid or str(uuid.uuid4()))
        what = "kept" if (before.ssid, before.passphrase) == (ssid, passphrase) else "changed"
    text = render(hotspot)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return hotspot, what
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole beside the old one and renamed over it: a power cut leaves one or the other,
    # and the file is never readable by others, not even for a moment.
    partial = path.with_name(f".{path.name}.new")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return hotspot, what


def main(argv: list[str] | None = None) -> int:
    """install.sh's steps: `check` an SSID before anything is written, `write` the profile,
    `address` of an existing profile (nothing when there is none)."""
    parser = argparse.ArgumentParser(prog="python3 -m appliance.hotspot")
    parser.add_argument("command", choices=["check", "write", "address"])
    parser.add_argument("--ssid")
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument("--rotate", action="store_true", help="a new passphrase")
    args = parser.parse_args(argv)
    try:
        if args.command == "address":
            try:
                print(read(args.profile).address)
            except NoHotspot:
                pass  # no hotspot: nothing to add to the sites and ranges
        elif args.command == "check":
            check_ssid(args.ssid or "")
        else:
            hotspot, what = write(args.profile, args.ssid or "", rotate=args.rotate)
            print(f"{what} {args.profile} (SSID {hotspot.ssid}, {hotspot.url})")
    except (HotspotError, OSError) as exc:
        print(f"hotspot: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
