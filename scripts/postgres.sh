#!/usr/bin/env bash
# Start or stop a throwaway local PostgreSQL server for the integration tests.
#
#   scripts/postgres.sh start   # prints the DSN on the last line of stdout:
#                               #   postgres://postgres@127.0.0.1:PORT/synapse_test?sslmode=disable
#   scripts/postgres.sh stop    # stops the server only if this script started it
#
# The server is for tests only: it listens on 127.0.0.1 alone, trusts every local
# connection (no password) and runs with fsync off. Each start that does not find a
# server already answering initializes a fresh cluster; stop removes it again.
#
# Binaries (initdb, pg_ctl, postgres) are looked for on PATH, then in the highest
# /usr/lib/postgresql/*/bin; as root with apt-get, Debian's postgresql package is
# installed when neither has them. initdb refuses to run as root, so as root the
# server runs as the postgres system user (created when missing) via runuser.
#
# The cluster lives outside the checkout, in /tmp/synapse-pg-<hash of the repository
# path> (so the unprivileged user can reach it whatever the checkout's permissions),
# or in $SYNAPSE_PG_DIR when set: data/ (data directory and unix socket) and
# postgres.log (the server log).
# Environment: SYNAPSE_TEST_PG_PORT (default 54329), SYNAPSE_PG_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${SYNAPSE_TEST_PG_PORT:-54329}
DB=synapse_test
ROLE=postgres   # the superuser initdb -U creates
BASE=${SYNAPSE_PG_DIR:-/tmp/synapse-pg-$(pwd -P | sha256sum | cut -c1-12)}
STATE=.postgres-started   # present when this script started the server: its data dir, bin dir and user
DSN="postgres://$ROLE@127.0.0.1:$PORT/$DB?sslmode=disable"

log() { echo "postgres: $*" >&2; }
die() { log "$*"; exit 1; }

# find_bindir prints the directory holding initdb, pg_ctl and postgres, if any.
find_bindir() {
  local dir cand
  if cand=$(command -v initdb 2>/dev/null); then
    dir=$(dirname "$(readlink -f "$cand")")
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -Vr); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
  done
  return 1
}

bindir() {
  local dir
  if dir=$(find_bindir); then echo "$dir"; return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "no PostgreSQL server binaries found; installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends --no-upgrade postgresql >&2; then
      apt-get update -qq >&2 || true
      apt-get install -y -qq --no-install-recommends --no-upgrade postgresql >&2 || die "apt-get install postgresql failed"
    fi
    if dir=$(find_bindir); then echo "$dir"; return; fi
  fi
  die "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql)"
}

# client NAME: a client program (psql, pg_isready), from the server's bin dir or PATH.
client() {
  if [ -x "$BINDIR/$1" ]; then echo "$BINDIR/$1"; return; fi
  command -v "$1" 2>/dev/null || die "$1 not found (install the PostgreSQL client)"
}

# run_user prints the user the server runs as: ourselves, or postgres when we are root.
run_user() {
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  if ! getent passwd postgres >/dev/null; then
    log "creating the system user postgres (initdb refuses to run as root)"
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postgres >&2
    elif command -v adduser >/dev/null 2>&1; then
      adduser --system --group --home /nonexistent --no-create-home postgres >&2
    else
      die "running as root, and no postgres user can be created (no useradd or adduser)"
    fi
  fi
  echo postgres
}

# as_user CMD...: run CMD as the server's user, from / (which it can always reach).
as_user() {
  if [ "$(id -u)" != 0 ]; then
    (cd / && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$PGUSER" -- "$@")
  else
    (cd / && su -s /bin/sh -c "$(printf '%q ' "$@")" "$PGUSER")
  fi
}

ready() { "$PG_ISREADY" -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -t 2 >/dev/null 2>&1; }

sql() {   # sql DATABASE QUERY
  "$PSQL" "postgres://$ROLE@127.0.0.1:$PORT/$1?sslmode=disable&connect_timeout=5" -X -q -tA -v ON_ERROR_STOP=1 -c "$2"
}

ensure_db() {
  local has
  has=$(sql postgres "SELECT 1 FROM pg_database WHERE datname = '$DB'") ||
    die "cannot connect as $ROLE (trust) to the server on 127.0.0.1:$PORT; is it another server? (set SYNAPSE_TEST_PG_PORT)"
  if [ "$has" != 1 ]; then
    sql postgres "CREATE DATABASE $DB" || die "CREATE DATABASE $DB failed"
  fi
  sql "$DB" "SELECT 1" >/dev/null || die "cannot connect to $DSN"
}

# ours: the state file names a data directory whose server runs.
ours() {
  [ -f "$STATE" ] || return 1
  local data bin user
  { read -r data; read -r bin; read -r user; } < "$STATE" || return 1
  [ -f "$data/postmaster.pid" ] && [ -x "$bin/pg_ctl" ]
}

start() {
  BINDIR=$(bindir)
  PSQL=$(client psql)
  PG_ISREADY=$(client pg_isready)
  if ready; then
    log "a PostgreSQL server already answers on 127.0.0.1:$PORT; using it"
    ours || { rm -f "$STATE"; log "(this script did not start it: it will not be stopped)"; }
    ensure_db
    echo "$DSN"
    return
  fi
  stop   # a server this script started that no longer answers on this port

  PGUSER=$(run_user)
  local data="$BASE/data" logfile="$BASE/postgres.log"
  mkdir -p "$BASE"
  if [ "$(id -u)" = 0 ]; then chown "$PGUSER" "$BASE"; fi
  as_user test -w "$BASE" -a -x "$BASE" || die "$BASE is not writable by $PGUSER (is a parent directory not traversable?); choose another SYNAPSE_PG_DIR"

  if [ -e "$data" ]; then
    [ -f "$data/PG_VERSION" ] || [ -z "$(ls -A "$data")" ] || die "$data exists and is not a PostgreSQL data directory; remove it"
    if as_user "$BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      log "stopping a stale server on $data"
      as_user "$BINDIR/pg_ctl" -D "$data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$data"
  fi
  rm -f "$logfile"

  log "initializing a cluster in $data ($("$BINDIR/postgres" --version), user $PGUSER)"
  local out
  if ! out=$(as_user "$BINDIR/initdb" -D "$data" -U "$ROLE" --auth=trust -E UTF8 --no-locale --no-sync 2>&1); then
    echo "$out" >&2
    die "initdb failed"
  fi
  as_user sh -c 'cat >> "$1/postgresql.conf"' sh "$data" <<EOF

# scripts/postgres.sh: a throwaway test server
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  as_user sh -c 'cat > "$1/pg_hba.conf"' sh "$data" <<EOF
# scripts/postgres.sh: a throwaway test server; trust local connections only
local all all               trust
host  all all 127.0.0.1/32  trust
EOF

  log "starting PostgreSQL on 127.0.0.1:$PORT (log $logfile)"
  printf '%s\n%s\n%s\n' "$data" "$BINDIR" "$PGUSER" > "$STATE"
  # pg_ctl -w waits (up to -t seconds) until the server accepts connections, and
  # notices when it exits during startup (port taken, bad configuration).
  if ! as_user "$BINDIR/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start >&2; then
    tail -n 20 "$logfile" >&2 2>/dev/null || true
    stop
    die "PostgreSQL did not start on 127.0.0.1:$PORT (see $logfile)"
  fi
  local deadline=$((SECONDS + 10))
  until ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      stop
      die "the server started but does not accept connections on 127.0.0.1:$PORT (see $logfile)"
    fi
    sleep 0.2
  done
  ensure_db
  log "ready: $(sql "$DB" 'SHOW server_version')"
  echo "$DSN"
}

stop() {
  [ -f "$STATE" ] || return 0
  local data bin user
  { read -r data; read -r bin; read -r user; } < "$STATE" || true
  PGUSER=${user:-$(id -un)}
  if [ -n "${data:-}" ] && [ -d "$data" ]; then
    if as_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      log "stopping PostgreSQL ($data)"
      as_user "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_user "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 ||
        log "pg_ctl stop failed (had the server died already?)"
    fi
    rm -rf "$data"
  fi
  rm -f "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
