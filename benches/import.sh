#!/usr/bin/env bash
# `safeguard import` of generated sellers into a fresh database, Merkle tree and checkpoints on
# against the same build with `audit.checkpoints = false`, alternating, on SQLite and PostgreSQL.
#
#   bash benches/import.sh [SELLERS=180000] [ROUNDS=2] [POSTGRES_ADMIN_URL=postgres://postgres@127.0.0.1:5432/test]
#
# Prints each run's wall time and the median ratio on/off per database. PostgreSQL runs import into
# a scratch database `safeguard_import_bench` (dropped and made again before each run).
set -euo pipefail
cd "$(dirname "$0")/.."
sellers=${1:-180000}
rounds=${2:-2}
admin=${3:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release --locked --bin safeguard >/dev/null 2>&1
bin=${CARGO_TARGET_DIR:-target}/release/safeguard
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" generate --sellers "$sellers" --output "$work/sellers.csv" >/dev/null
export SAFEGUARD__LOG__LEVEL=error
export SAFEGUARD__AUDIT__SIGNING_KEY_FILE="$work/checkpoint.key"
export SAFEGUARD__AUDIT__CHECKPOINT_DIR="$work/checkpoints"
pg_base=${admin%/*}

fresh() { # $1 = sqlite|postgres → prints a database URL with nothing in it
  if [ "$1" = sqlite ]; then
    rm -f "$work"/db.sqlite*
    echo "sqlite://$work/db.sqlite?mode=rwc"
  else
    psql "$admin" -qc "drop database if exists safeguard_import_bench" -c "create database safeguard_import_bench" >/dev/null
    echo "$pg_base/safeguard_import_bench"
  fi
}

once() { # $1 = database, $2 = true|false (checkpoints) → prints seconds
  local url start end
  url=$(fresh "$1")
  rm -rf "$work/checkpoints"
  start=$(date +%s.%N)
  SAFEGUARD__AUDIT__CHECKPOINTS=$2 "$bin" --database-url "$url" import "$work/sellers.csv" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

# The first SQLite run with checkpoints on makes the key file (as the service does); every later run,
# PostgreSQL's too, signs with it.
for db in sqlite postgres; do
  on=() off=()
  for r in $(seq 1 "$rounds"); do
    t=$(once "$db" false); off+=("$t"); echo "$db round $r checkpoints off: $t s"
    t=$(once "$db" true); on+=("$t"); echo "$db round $r checkpoints on:  $t s"
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  mon=$(median "${on[@]}"); moff=$(median "${off[@]}")
  printf '%s: %s sellers, import %.1f s with the Merkle tree and checkpoints, %.1f s without: ratio %.2f\n' \
    "$db" "$sellers" "$mon" "$moff" "$(echo "$mon / $moff" | bc -l)"
done
