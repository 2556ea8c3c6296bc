# shellcheck shell=bash
# Shared set-up for ./scripts/demo and ./scripts/test (sourced, not run).
# Creates .venv when missing, installs the project when pyproject.toml changed,
# and compiles the UI's message catalogs (never edited at run time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

tsunagu_bootstrap() {
    local extras="$1"   # "" or "dev"
    if ! command -v python3 >/dev/null; then
        echo "python3 is required (Debian 12 / Raspberry Pi OS ship it)." >&2
        exit 1
    fi
    if [ ! -x "$PY" ]; then
        echo "==> creating $VENV"
        python3 -m venv "$VENV" || {
            echo "python3 -m venv failed: on Debian install it with 'apt-get install python3-venv'." >&2
            exit 1
        }
    fi
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    local stamp="$VENV/.tsunagu-installed-$extras"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    # The dev install is a superset: after ./scripts/test, ./scripts/demo installs nothing.
    local dev_stamp="$VENV/.tsunagu-installed-dev"
    if [ -z "$extras" ] && [ -f "$dev_stamp" ] && [ "$(cat "$dev_stamp")" = "$want" ]; then
        stamp="$dev_stamp"
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        # pip's own chatter (index warnings, build notes) goes to a log, shown only when the
        # install fails: it buried the demo's login line.
        local log="$VENV/pip-install.log"
        echo "==> installing tsunagu $spec into .venv (log: $log)"
        if ! { "$PY" -m pip install -q --upgrade pip && "$PY" -m pip install -q -e "$spec"; } \
                > "$log" 2>&1; then
            cat "$log" >&2
            echo "pip install failed; the log above is also in $log" >&2
            exit 1
        fi
        echo "$want" > "$stamp"
    fi
    if [ -d webui/translations ]; then
        "$VENV/bin/pybabel" -q compile -d webui/translations
    fi
}

# Install Debian packages when missing and we can (root, or passwordless sudo).
tsunagu_apt_install() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            echo "note: cannot install ${missing[*]} (not root, no sudo); tests that need them are skipped." >&2
            return 0
        fi
    fi
    echo "==> apt-get install ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || \
        echo "note: apt-get install ${missing[*]} failed; tests that need them are skipped." >&2
}
