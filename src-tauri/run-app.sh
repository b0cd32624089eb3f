#!/usr/bin/env bash
# Builds and runs the Custodian desktop app. Safe to run again: it installs
# only what is missing and rebuilds only what changed.
#
#   src-tauri/run-app.sh            # debug build: quickest to build, fast enough to use
#   src-tauri/run-app.sh --release  # optimised build (slower to build)
#
# Debian/Ubuntu: installs the WebKitGTK build packages with apt (sudo when not
# root). Other systems: install Tauri's prerequisites yourself
# (https://v2.tauri.app/start/prerequisites/) and set CUSTODIAN_SKIP_APT=1.
#
# The app opens the cache at $CUSTODIAN_DB, else the platform data directory
# (~/.local/share/custodian/custodian.db on Linux), and fills an empty one
# with the demo organisation. Logs go to stderr; filter with CUSTODIAN_LOG
# (e.g. CUSTODIAN_LOG=debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE=()
case "${1:-}" in
    --release) PROFILE=(--release) ;;
    "") ;;
    *) echo "usage: $0 [--release]" >&2; exit 2 ;;
esac

if [ "${CUSTODIAN_SKIP_APT:-}" != 1 ] && command -v dpkg-query >/dev/null; then
    packages=(build-essential pkg-config curl file libwebkit2gtk-4.1-dev libssl-dev librsvg2-dev
              libayatana-appindicator3-dev libxdo-dev
              # the LDAP source's Kerberos bind: MIT Kerberos headers, libclang for bindgen
              libkrb5-dev libclang-dev)
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing system packages: ${missing[*]}"
        SUDO=()
        [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
        "${SUDO[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

echo "==> building the UI (ui/dist)"
(
    cd ui
    # npm install only when the lockfile changed since the last install.
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm install --no-audit --no-fund --loglevel=error  # not npm ci: see tests/run.sh
    fi
    npm run build
)

echo "==> building and starting the app"
exec cargo run -p custodian-app "${PROFILE[@]}"
