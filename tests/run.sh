#!/usr/bin/env bash
# Runs every test of Custodian, from a fresh Debian 12 machine (as root, or
# with sudo) or a developer's checkout; safe to run again:
#   1. system packages (WebKitGTK, WebKitWebDriver, Xvfb), only the missing ones
#   2. tauri-driver, if not on PATH
#   3. the UI: npm install (from the lockfile), unit tests (vitest), production build (ui/dist)
#   4. the core: cargo test --features ts (unit, integration, bindings freshness)
#   5. the desktop app (debug build) and its end-to-end tests under Xvfb
# CI runs it through .ci/run.  Skip step 1 with CUSTODIAN_SKIP_APT=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
START=$(date +%s)
STEP="setup"
PASSED=()

section() {
    STEP="$1"
    printf '\n==== [%s] %s (%ss) ====\n' "$(date +%H:%M:%S)" "$1" "$(( $(date +%s) - START ))"
}
die() {
    printf '\nFAILED during "%s": %s\n' "$STEP" "$*" >&2
    exit 1
}
trap 'rc=$?; if [ $rc -ne 0 ]; then printf "\nFAILED during \"%s\" (exit %s) after %ss\n" "$STEP" "$rc" "$(( $(date +%s) - START ))" >&2; fi' EXIT

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export DEBIAN_FRONTEND=noninteractive
# The test caches are encrypted with a passphrase from the environment (no
# Secret Service in CI); the keyring test unsets it to use gnome-keyring.
export CUSTODIAN_CACHE_KEY="${CUSTODIAN_CACHE_KEY:-custodian-test-suite}"
export PATH="$HOME/.cargo/bin:$PATH"
# Step 1 installs Samba, so as root (CI) its AD tests fail here rather than
# skip; they need root for Samba's fixed ports 389/636 (tests/core/samba.rs).
if [ "$(id -u)" -eq 0 ]; then
    export CUSTODIAN_REQUIRE_SAMBA="${CUSTODIAN_REQUIRE_SAMBA:-1}"
fi

# ---------------------------------------------------------------------------
section "1/5 system packages"
APT_PACKAGES=(
    # build the Tauri app (https://v2.tauri.app/start/prerequisites/#linux)
    build-essential pkg-config curl file
    libwebkit2gtk-4.1-dev libssl-dev librsvg2-dev libayatana-appindicator3-dev libxdo-dev
    # the core: keyring (Secret Service over D-Bus)
    libdbus-1-dev
    # end-to-end tests: WebKitWebDriver, a virtual display, fonts to render text
    webkit2gtk-driver xvfb xauth fonts-dejavu-core
    # real local peers for the core tests: Python (scim2-server, moto), an OS
    # keyring (gnome-keyring on a private D-Bus), OpenLDAP
    python3 python3-venv gnome-keyring dbus-daemon dbus-x11 libsecret-tools slapd ldap-utils
    # a real Active Directory for the LDAP source: a Samba AD DC the tests
    # provision on loopback (samba-ad-dc brings winbind; the provisioning data
    # is its own package)
    samba samba-ad-dc samba-ad-provision
    # the LDAP source's Kerberos bind (ldap3's `gssapi`): libgssapi-sys is
    # built against MIT Kerberos' headers, with bindgen, which loads libclang;
    # the tests get tickets from the Samba DC's KDC with kinit (krb5-user)
    libkrb5-dev libclang-dev krb5-user
    # the store's second engine: a throwaway PostgreSQL cluster (15 or newer),
    # with TLS from a throwaway CA (openssl)
    postgresql openssl
)
if [ "${CUSTODIAN_SKIP_APT:-}" = 1 ]; then
    echo "skipped (CUSTODIAN_SKIP_APT=1)"
else
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        missing+=(nodejs npm)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all present"
    else
        echo "installing: ${missing[*]}"
        SUDO=()
        if [ "$(id -u)" -ne 0 ]; then
            command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]}"
            SUDO=(sudo)
        fi
        "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
fi
command -v node >/dev/null || die "node not found"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js >= 20 is needed by the UI toolchain (found $(node --version))"

# ---------------------------------------------------------------------------
section "2/5 tauri-driver"
if command -v tauri-driver >/dev/null; then
    echo "found $(command -v tauri-driver)"
else
    cargo install tauri-driver --locked --version '^2' || die "cargo install tauri-driver failed"
fi

# ---------------------------------------------------------------------------
section "2b/5 test peers (Python venv: scim2-server, moto)"
# Real servers the core tests start on loopback. Installed into target/peers,
# which the tests find (or set CUSTODIAN_PEERS_DIR).
export CUSTODIAN_PEERS_DIR="${CUSTODIAN_PEERS_DIR:-$PWD/target/peers}"
PEER_PACKAGES=("scim2-server==0.8.3" "moto[server]==5.2.5" "boto3")
if [ ! -x "$CUSTODIAN_PEERS_DIR/venv/bin/python" ]; then
    mkdir -p "$CUSTODIAN_PEERS_DIR"
    python3 -m venv "$CUSTODIAN_PEERS_DIR/venv" || die "python3 -m venv failed"
fi
"$CUSTODIAN_PEERS_DIR/venv/bin/pip" install --quiet --disable-pip-version-check "${PEER_PACKAGES[@]}" \
    || die "pip install of the test peers failed"
"$CUSTODIAN_PEERS_DIR/venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(scim2-server|moto|boto3) '

# ---------------------------------------------------------------------------
section "3/5 UI: install, unit tests, build"
[ -f ui/package.json ] || die "ui/package.json is missing"
(
    cd ui
    # Not `npm ci`: the registry reachable here lacks other platforms' optional
    # packages (e.g. @rollup/rollup-android-*), so the lockfile cannot list
    # them and `npm ci` refuses it as out of sync. `npm install` follows the
    # lockfile for everything it lists.
    npm install --no-audit --no-fund --loglevel=error
    npm test
    npm run build
) || die "the UI step failed (see above)"
[ -f ui/dist/index.html ] || die "npm run build produced no ui/dist/index.html"
PASSED+=("ui")

# ---------------------------------------------------------------------------
section "4/5 core: cargo test --features ts on SQLite, then again on PostgreSQL"
# A throwaway PostgreSQL cluster (run as the unprivileged postgres user: the
# server refuses root), stopped on exit. The PostgreSQL-only tests (the
# gate, concurrency, db copy) use it in both passes; in the second pass every
# core test that is not about the SQLite file runs with a database there.
PG_DIR="$(mktemp -d /tmp/custodian-pg.XXXXXX)"  # /tmp: the postgres user must reach it
export CUSTODIAN_TEST_PG
CUSTODIAN_TEST_PG="$(bash tests/support/pg-cluster.sh start "$PG_DIR")" || die "could not start PostgreSQL"
export PGPASSFILE="$PG_DIR/pgpass"
export CUSTODIAN_TEST_PG_CA="$PG_DIR/ca.crt"  # the cluster's TLS CA (certificate for "localhost")
trap 'rc=$?; bash tests/support/pg-cluster.sh stop "$PG_DIR" || true; rm -rf "$PG_DIR"; if [ $rc -ne 0 ]; then printf "\nFAILED during \"%s\" (exit %s) after %ss\n" "$STEP" "$rc" "$(( $(date +%s) - START ))" >&2; fi' EXIT
# Includes the bindings freshness test: ui/src/bindings.ts must match the DTOs.
cargo test --features ts || die "core tests failed"
PASSED+=("core")
CUSTODIAN_TEST_ENGINE=postgres cargo test --features ts --test core || die "core tests on PostgreSQL failed"
PASSED+=("core-postgres")

# ---------------------------------------------------------------------------
section "5/5 desktop app: build and end-to-end tests"
cargo build -p custodian-app || die "cargo build -p custodian-app failed"
# The tests start their own Xvfb, tauri-driver and app (see tests/e2e/main.rs).
cargo test --test e2e -- --ignored --test-threads=1 || die "end-to-end tests failed (artifacts in target/e2e-artifacts/)"
PASSED+=("e2e")

section "done"
echo "tests/run.sh: all passed (${PASSED[*]}) in $(( $(date +%s) - START ))s"
