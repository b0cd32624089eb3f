#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (Debian's `postgresql`).
#
#   tests/support/pg-cluster.sh start DIR   # initdb + start; prints the admin URL
#   tests/support/pg-cluster.sh stop DIR    # fast shutdown
#
# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` user that Debian's package creates. The superuser
# `custodian_test` logs in with SCRAM over TCP on 127.0.0.1; its random
# password is in DIR/pgpass (mode 0600): point PGPASSFILE at it. Nothing
# here prints the password.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2; exit 1; }

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    RUNAS=(runuser -u postgres --)
fi

case "$cmd" in
start)
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/data/postmaster.pid" ]; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir/data" "$dir/sock"
    mkdir -p "$dir/sock"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    pw="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    umask 077
    printf '%s\n' "$pw" > "$dir/pwfile"
    printf '127.0.0.1:%s:*:custodian_test:%s\nlocalhost:%s:*:custodian_test:%s\n' "$port" "$pw" "$port" "$pw" > "$dir/pgpass"
    chmod 600 "$dir/pgpass"
    if [ ${#RUNAS[@]} -gt 0 ]; then
        chown postgres "$dir" "$dir/sock" "$dir/pwfile"
    fi
    "${RUNAS[@]}" "$PGBIN/initdb" -D "$dir/data" -U custodian_test --pwfile="$dir/pwfile" \
        -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    # TLS: a throwaway CA and a server certificate for the name "localhost"
    # only (not 127.0.0.1), so verify-full can be tested both ways; clients
    # find the CA in $dir/ca.crt. Plain connections stay allowed.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Custodian test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1 \
        || { echo "openssl could not make the test CA" >&2; exit 1; }
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost\n' > "$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" >/dev/null 2>&1 \
        || { echo "openssl could not sign the test server certificate" >&2; exit 1; }
    rm -f "$dir/ca.key" "$dir/server.csr" "$dir/san.ext" "$dir/ca.srl"
    chmod 644 "$dir/ca.crt" "$dir/server.crt"
    chmod 600 "$dir/server.key"
    if [ ${#RUNAS[@]} -gt 0 ]; then
        chown postgres "$dir/server.key" "$dir/server.crt"
    fi
    "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
        start >/dev/null || { cat "$dir/data/server.log" >&2; exit 1; }
    echo "$port" > "$dir/port"
    echo "postgresql://custodian_test@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
