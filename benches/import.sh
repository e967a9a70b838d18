#!/usr/bin/env bash
# Issue 7's import figure in one command: Synthea-style transaction Bundles (one file per
# patient, ~111 resources each, `urn:uuid:` references) written by `carnet-gen`, then
# `carnet import` into a fresh database, RUNS times, printing each run's phases (from the
# import's log) and its rate.
#
#   benches/import.sh sqlite              # 100,000 resources, 3 runs
#   RESOURCES=20000 RUNS=1 benches/import.sh postgres
#
# Environment: RESOURCES (100000), RUNS (3), CARNET_BIN (default: the release build in
# $CARGO_TARGET_DIR), SKIP_BUILD=1, DATA_DIR (/var/tmp/carnet-bench), PG_ADMIN
# (postgres://postgres@127.0.0.1:5432/postgres), IMPORT_ARGS (extra `carnet import` flags).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
backend=${1:-sqlite}
resources=${RESOURCES:-100000}
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/carnet-release}
carnet=${CARNET_BIN:-$CARGO_TARGET_DIR/release/carnet}
gen=$CARGO_TARGET_DIR/release/carnet-gen
if [[ -z ${SKIP_BUILD:-} ]]; then
  (cd "$root" && cargo build --release -p carnet -p carnet-benches --bins)
fi
data_dir=${DATA_DIR:-/var/tmp/carnet-bench}
data=$data_dir/synthea-$resources-seed1
if [[ ! -d $data ]]; then
  mkdir -p "$data_dir"
  "$gen" --resources "$resources" --format synthea --seed 1 --out "$data.tmp"
  mv "$data.tmp" "$data"
fi
pg_admin=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d /var/tmp/carnet-import.XXXXXX)
trap 'rm -rf "$work"' EXIT
for run in $(seq 1 "$runs"); do
  case $backend in
    sqlite) url="sqlite://$work/import.db"; rm -f "$work"/import.db* ;;
    postgres)
      db=carnet_import_bench
      psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
      url="${pg_admin%/*}/$db"
      ;;
    *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
  esac
  log=$work/run-$run.log
  /usr/bin/time -f "%e s wall, %U s user, %S s system, %M KB max RSS" \
    env CARNET_LOG=info,sqlx=warn "$carnet" import "$data" --database-url "$url" ${IMPORT_ARGS:-} >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    exit 1
  }
  echo "== $backend run $run"
  # The phase lines and the closing summary.
  grep -E "import: |^imported |wall" "$log" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-220
done
