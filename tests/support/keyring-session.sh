#!/usr/bin/env bash
# Runs a command inside a private session D-Bus with an unlocked gnome-keyring
# (Secret Service). All state (bus socket, keyring files) lives in a throwaway
# directory that is removed afterwards; the bus and the daemon die with it.
#   usage: tests/support/keyring-session.sh CMD [ARGS...]
# Needs the Debian packages gnome-keyring, dbus-daemon (dbus-run-session), dbus-x11.
set -euo pipefail
KR=$(mktemp -d "${TMPDIR:-/tmp}/custodian-keyring.XXXXXX")
mkdir -p "$KR/home" "$KR/data" "$KR/run" "$KR/config" "$KR/cache"; chmod 700 "$KR/run"
cat > "$KR/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:dir=$KR/run</listen>
  <standard_session_servicedirs/>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
export KR_TMP=$KR KR_PASSWORD=${KR_PASSWORD:-test-password}
exec env HOME="$KR/home" XDG_DATA_HOME="$KR/data" XDG_RUNTIME_DIR="$KR/run" \
  XDG_CONFIG_HOME="$KR/config" XDG_CACHE_HOME="$KR/cache" \
  dbus-run-session --config-file="$KR/bus.conf" -- bash -c '
    eval "$(printf %s "$KR_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets)"
    export GNOME_KEYRING_CONTROL
    for i in $(seq 100); do
      dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true && break
      sleep 0.05; done
    rc=0; "$@" || rc=$?
    rm -rf "$KR_TMP"; exit $rc' keyring-session "$@"
