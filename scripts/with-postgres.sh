#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on a free loopback port, exported as
# PAVE_TEST_DATABASE_URL, and stops the server afterwards (also on failure or Ctrl-C).
# Installs PostgreSQL from Debian's packages when it is missing.
#
#   scripts/with-postgres.sh cargo test -p pave-store
set -euo pipefail

pg_bin=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && pg_bin="$d"
done
if [ -z "$pg_bin" ]; then
  echo "with-postgres: PostgreSQL not found; installing it (apt-get install postgresql)" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "with-postgres: need root to install PostgreSQL" >&2; exit 1; fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pg_bin="$d"; done
fi

dir=$(mktemp -d /tmp/pave-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi

cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

as_pg "$pg_bin/initdb" -D "$dir/data" -U pave --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null

export PAVE_TEST_DATABASE_URL="postgres://pave@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
