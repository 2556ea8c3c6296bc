"""The clinic LAN's address ranges as systemd's IPAddressAllow=, for the web UI's unit, the
HTTPS proxy's and the daemon's (its webhooks go to the clinic's own systems): the kernel
itself then refuses packets from, or to, anywhere else.

Standard library only: scripts/install.sh runs it with the system's python3 before the
virtual environment exists (`python3 -m appliance.lan /etc/tsunagu/tsunagu.toml [NETWORK…]`,
the networks being the hotspot's when there is one). The
service checks the same key strictly at start (appliance.config).
"""
from __future__ import annotations

import ipaddress
import sys
import tomllib
from pathlib import Path

DEFAULT_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10", "fc00::/7")


def ranges(config_path: Path) -> list[str]:
    """[web] lan_ranges of the file (the defaults when not set), each a valid network."""
    data = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    given = data.get("web", {}).get("lan_ranges", list(DEFAULT_RANGES))
    return [str(ipaddress.ip_network(r, strict=False)) for r in given]


def drop_in(config_path: Path, also: tuple[str, ...] = ()) -> str:
    """A systemd drop-in: the unit's packets only from this machine and the clinic LAN, and
    from the networks *also* names (the hotspot's) unless a range already holds them."""
    allowed = ranges(config_path)
    held = [ipaddress.ip_network(r) for r in allowed]
    for extra in also:
        network = ipaddress.ip_network(extra, strict=False)
        if not any(network.version == h.version and network.subnet_of(h) for h in held):
            allowed.append(str(network))
            held.append(network)
    return ("# Written by scripts/install.sh from [web] lan_ranges; run it again after changing"
            f" them.\n[Service]\nIPAddressDeny=any\nIPAddressAllow={' '.join(['localhost', *allowed])}\n")


if __name__ == "__main__":
    try:
        sys.stdout.write(drop_in(Path(sys.argv[1]), tuple(sys.argv[2:])))
    except (IndexError, OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        sys.exit(f"lan ranges: {exc}")
