#!/usr/bin/env bash
# Streaming hot standbys of the local PostgreSQL (127.0.0.1:5432) for the replication tests:
#   .ci/standby.sh start   makes them anew with `pg_basebackup -R` and starts them
#   .ci/standby.sh stop    stops them and removes their data directories
# 5433 is the standby every replication test follows; it is paused and resumed, never promoted.
# 5434 exists to be promoted by the one failover test: once promoted it is a primary of its own, so
# `start` recreates it for the next run.
# Each cluster has its own data directory under $SAFEGUARD_STANDBY_DIR (a temporary directory by
# default), its own configuration (Debian keeps the primary's outside its data directory, so the base
# backup carries none), and runs as the `postgres` OS user.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROOT=${SAFEGUARD_STANDBY_DIR:-${TMPDIR:-/tmp}/safeguard-standby}
PORTS=(5433 5434)
PRIMARY=(-h 127.0.0.1 -p 5432 -U postgres)

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

primary_sql() { psql "${PRIMARY[@]}" -d postgres -Atc "$1"; }

# The primary must accept replication connections from loopback; Debian's default pg_hba.conf does
# not list the `replication` pseudo-database, which `all` does not cover.
allow_replication() {
  local hba wal_level senders
  wal_level=$(primary_sql 'show wal_level')
  senders=$(primary_sql 'show max_wal_senders')
  if [ "$wal_level" = minimal ] || [ "$senders" -lt 4 ]; then
    echo "the primary needs wal_level=replica and max_wal_senders>=4 (has $wal_level, $senders); a restart is needed" >&2
    exit 1
  fi
  hba=$(primary_sql 'show hba_file')
  if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    echo "host replication all 127.0.0.1/32 trust" >>"$hba"
    primary_sql 'select pg_reload_conf()' >/dev/null
    sleep 1
  fi
}

stop_one() {
  local dir=$ROOT/$1
  if [ -f "$dir/postmaster.pid" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

start_one() {
  local port=$1 dir=$ROOT/$1
  stop_one "$port"
  mkdir -p "$dir"
  chown postgres: "$ROOT" "$dir"
  chmod 0700 "$dir"
  # -R writes standby.signal and primary_conninfo; -X stream keeps the WAL of the copy itself.
  as_postgres "$PGBIN/pg_basebackup" "${PRIMARY[@]}" -D "$dir" -R -X stream -c fast
  cat >"$dir/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
hot_standby = on
# The primary keeps rows a standby query still reads, so replay never cancels the tests' reads.
hot_standby_feedback = on
shared_buffers = 32MB
logging_collector = off
EOF
  # A hot standby refuses to replay with fewer of these than the primary has.
  local setting
  for setting in max_connections max_wal_senders max_worker_processes max_prepared_transactions max_locks_per_transaction; do
    echo "$setting = $(primary_sql "show $setting")" >>"$dir/postgresql.conf"
  done
  cat >"$dir/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
  : >"$dir/pg_ident.conf"
  chown postgres: "$dir/postgresql.conf" "$dir/pg_hba.conf" "$dir/pg_ident.conf"
  as_postgres "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
  for _ in $(seq 1 60); do
    if [ "$(psql -h 127.0.0.1 -p "$port" -U postgres -d test -Atc 'select pg_is_in_recovery()' 2>/dev/null)" = t ]; then
      echo "standby on 127.0.0.1:$port is replaying from 127.0.0.1:5432"
      return 0
    fi
    sleep 1
  done
  echo "the standby on 127.0.0.1:$port did not come up:" >&2
  tail -n 30 "$dir/server.log" >&2 || true
  exit 1
}

case "${1:-}" in
  start)
    allow_replication
    mkdir -p "$ROOT"
    for port in "${PORTS[@]}"; do start_one "$port"; done
    ;;
  stop)
    for port in "${PORTS[@]}"; do stop_one "$port"; done
    rmdir "$ROOT" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
