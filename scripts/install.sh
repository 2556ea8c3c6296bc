#!/usr/bin/env bash
# Install Tsunagu on Raspberry Pi OS / Debian 12, or remove it. Run as root from a checkout:
#
#   sudo ./scripts/install.sh               install or update (idempotent)
#   sudo ./scripts/install.sh --uninstall   remove the programs; keep data and configuration
#   ./scripts/install.sh --root DIR [--no-venv]   write everything under DIR (for tests and
#                                           image building): no users, no systemctl, no udevadm
#
# What it does: a system user "tsunagu" (groups dialout, gpio); /opt/tsunagu/venv with this
# checkout installed; /etc/tsunagu/tsunagu.toml from the commented example ONLY when missing
# (the clinic's configuration is never overwritten); /var/lib/tsunagu (database, backups);
# the systemd units and the udev rule, enabled and started; HTTPS on the LAN: Debian's caddy
# in front of the web UI with its own local CA (deploy/Caddyfile), reachable as
# https://tsunagu.local/ (avahi-daemon) and by the Pi's address, http redirected to https,
# both units limited to the LAN ranges of [web] lan_ranges; sealed emergency codes printed
# on the first install (docs/security.md).
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT=""
UNINSTALL=""
NO_VENV=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --no-venv) NO_VENV=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$ROOT" ]; then ROOT="$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)"; fi

OPT="$ROOT/opt/tsunagu"
ETC="$ROOT/etc/tsunagu"
DATA="$ROOT/var/lib/tsunagu"
UNITS="$ROOT/etc/systemd/system"
RULES="$ROOT/etc/udev/rules.d"
CADDY="$ROOT/etc/caddy"
AVAHI="$ROOT/etc/avahi"
POLKIT="$ROOT/etc/polkit-1/rules.d"
UNIT_FILES=(tsunagu-daemon.service tsunagu-web.service tsunagu-check.service
            tsunagu-check.timer tsunagu-backup.service tsunagu-backup.timer
            tsunagu-set-clock@.service tsunagu-usb-power@.service)
ENABLE=(tsunagu-daemon.service tsunagu-web.service tsunagu-check.timer tsunagu-backup.timer)

say() { echo "==> $*"; }
live() { [ -z "$ROOT" ]; }   # acting on this machine, not on a directory

if live && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or use --root DIR" >&2
    exit 1
fi

if [ -n "$UNINSTALL" ]; then
    if live; then
        systemctl disable --now "${ENABLE[@]}" 2>/dev/null || true
    fi
    for unit in "${UNIT_FILES[@]}"; do rm -f "$UNITS/$unit"; done
    rm -rf "$UNITS/tsunagu-web.service.d" "$UNITS/tsunagu-daemon.service.d"
    rm -f "$UNITS/caddy.service.d/tsunagu.conf"
    rm -f "$RULES/99-tsunagu-modem.rules" "$POLKIT/50-tsunagu.rules"
    rm -rf "$OPT"
    if live; then
        systemctl daemon-reload
        udevadm control --reload-rules || true
    fi
    say "removed the programs, units and udev rule"
    say "kept: $DATA (database, backups) and $ETC (configuration); delete them yourself if wanted"
    exit 0
fi

# The user and groups the services run as.
if live; then
    getent group gpio >/dev/null || groupadd --system gpio
    if ! id tsunagu >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/tsunagu --shell /usr/sbin/nologin \
            --groups dialout,gpio tsunagu
        say "created the system user tsunagu"
    else
        usermod -a -G dialout,gpio tsunagu
    fi
else
    say "(--root) would create the system user tsunagu in groups dialout, gpio"
fi

install -d -m 0755 "$OPT" "$ETC" "$UNITS" "$RULES" "$POLKIT"
install -d -m 0750 "$DATA" "$DATA/backups"
if live; then chown -R tsunagu:tsunagu "$DATA"; chgrp tsunagu "$ETC"; fi

# The programs: a copy of this checkout and a venv with it installed.
say "copying the program to $OPT/src"
rm -rf "$OPT/src.new"
mkdir -p "$OPT/src.new"
(cd "$SRC" && tar --exclude=.git --exclude=.venv --exclude=var --exclude=test-output \
    --exclude='__pycache__' -cf - .) | (cd "$OPT/src.new" && tar -xf -)
rm -rf "$OPT/src"
mv "$OPT/src.new" "$OPT/src"
if [ -z "$NO_VENV" ]; then
    [ -x "$OPT/venv/bin/python" ] || python3 -m venv "$OPT/venv"
    "$OPT/venv/bin/pip" install -q --upgrade pip
    # The package build compiles the Japanese catalog into the installed package (setup.py).
    "$OPT/venv/bin/pip" install -q "$OPT/src"
else
    say "(--no-venv) not creating $OPT/venv"
fi

# Configuration: only when missing. The clinic's edits are never overwritten.
if [ ! -f "$ETC/tsunagu.toml" ]; then
    install -m 0640 "$SRC/docs/config.example.toml" "$ETC/tsunagu.toml"
    if live; then chgrp tsunagu "$ETC/tsunagu.toml"; fi
    say "wrote $ETC/tsunagu.toml — edit clinic_name and the [[modem]] section"
else
    say "kept the existing $ETC/tsunagu.toml"
fi

for unit in "${UNIT_FILES[@]}"; do install -m 0644 "$SRC/systemd/$unit" "$UNITS/$unit"; done
install -m 0644 "$SRC/systemd/99-tsunagu-modem.rules" "$RULES/99-tsunagu-modem.rules"
# The daemon may start the clock and USB power units, and no other (least privilege).
install -m 0644 "$SRC/systemd/50-tsunagu.rules" "$POLKIT/50-tsunagu.rules"

# The clinic LAN's ranges ([web] lan_ranges) for the web UI, the proxy and the daemon's
# webhooks to the clinic's own systems (IPAddressAllow=).
lan_dropin="$(PYTHONPATH="$SRC" python3 -m appliance.lan "$ETC/tsunagu.toml")"
install -d -m 0755 "$UNITS/tsunagu-web.service.d" "$UNITS/caddy.service.d" \
    "$UNITS/tsunagu-daemon.service.d"
printf '%s\n' "$lan_dropin" > "$UNITS/tsunagu-web.service.d/lan.conf"
printf '%s\n' "$lan_dropin" > "$UNITS/tsunagu-daemon.service.d/lan.conf"

# HTTPS: Caddy with its local CA in front of waitress, by name and by address.
if live; then
    addresses="$(hostname -I 2>/dev/null || true)"
else
    addresses="${TSUNAGU_ADDRESSES:-192.0.2.10}"   # --root: an example address
fi
sites="tsunagu.local localhost"
for address in $addresses; do
    case "$address" in *:*) sites="$sites [$address]" ;; *) sites="$sites $address" ;; esac
done
install -d -m 0755 "$CADDY" "$AVAHI"
if [ -f "$CADDY/Caddyfile" ] && ! grep -q "^# Tsunagu" "$CADDY/Caddyfile"; then
    mv "$CADDY/Caddyfile" "$CADDY/Caddyfile.before-tsunagu"
    say "kept the previous Caddyfile as $CADDY/Caddyfile.before-tsunagu"
fi
install -m 0644 "$SRC/deploy/Caddyfile" "$CADDY/Caddyfile"
{
    printf '%s\n' "$lan_dropin" | sed 's/^# Written by.*/# Written by scripts\/install.sh: the sites and the LAN ranges./'
    echo "Environment=\"TSUNAGU_SITES=${sites// /, }\""
    echo "Environment=TSUNAGU_UPSTREAM=127.0.0.1:8080"
} > "$UNITS/caddy.service.d/tsunagu.conf"
# tsunagu.local for every device on the LAN, whatever the Pi's host name (avahi-daemon).
first_v4="$(for a in $addresses; do case "$a" in *:*) ;; *) echo "$a"; break ;; esac; done)"
if [ -n "$first_v4" ]; then
    touch "$AVAHI/hosts"
    grep -v ' tsunagu.local$' "$AVAHI/hosts" > "$AVAHI/hosts.new" || true
    echo "$first_v4 tsunagu.local" >> "$AVAHI/hosts.new"
    mv "$AVAHI/hosts.new" "$AVAHI/hosts"
fi

if live; then
    udevadm control --reload-rules
    udevadm trigger --subsystem-match=tty || true
    for package in caddy avahi-daemon; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            say "installing $package (HTTPS and the name tsunagu.local)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null
        fi
    done
    systemctl daemon-reload
    systemctl enable --now "${ENABLE[@]}"
    systemctl enable avahi-daemon caddy
    systemctl restart avahi-daemon caddy
    say "services enabled and started: ${ENABLE[*]} caddy avahi-daemon"
    # Caddy makes its CA on first start; the web UI offers its root at /ca.
    root_cert=/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt
    for _ in $(seq 1 30); do [ -f "$root_cert" ] && break; sleep 1; done
    if [ -f "$root_cert" ]; then
        install -m 0644 -o tsunagu -g tsunagu "$root_cert" "$DATA/ca.crt"
    else
        say "warning: Caddy has not made its certificate yet; run this script again"
    fi
    tsunagu_cli=(sudo -u tsunagu "$OPT/venv/bin/tsunagu")
    if "${tsunagu_cli[@]}" emergency-codes status --config "$ETC/tsunagu.toml" | grep -q "^unused codes: 0$"; then
        say "PRINT these emergency codes, seal them in an envelope and keep it by the appliance:"
        "${tsunagu_cli[@]}" emergency-codes new --config "$ETC/tsunagu.toml"
    fi
    say "open https://tsunagu.local/ (or https://${first_v4:-PI-ADDRESS}/); install the certificate from http://tsunagu.local/ca"
    say "next: sudo -u tsunagu $OPT/venv/bin/tsunagu user add NAME --role admin --config $ETC/tsunagu.toml"
else
    say "(--root) would install caddy and avahi-daemon; would enable and start: ${ENABLE[*]} caddy avahi-daemon"
fi
say "done"
