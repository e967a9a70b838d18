#!/usr/bin/env bash
# Search benchmarks in one command: generate data, load it with `carnet import`,
# run the criterion search benches (library executor), then wrk over HTTP against a
# release `carnet` (each common search alone, then a mix), and the query plans.
#
#   benches/run-search-bench.sh sqlite 10000
#   benches/run-search-bench.sh postgres 1000000
#
# Environment: RELOAD=1 reloads an existing database; SKIP_BUILD=1, SKIP_CRITERION=1,
# SKIP_WRK=1, SKIP_EXPLAIN=1 skip steps; WRK_SECS (default 10) per search, MIX_SECS
# (default 30); SEED (default 1); PG_ADMIN (default postgres://postgres@127.0.0.1:5432/postgres);
# BENCH_DIR (default /var/tmp/carnet-bench) for data, SQLite files and results.
set -euo pipefail

backend=${1:?usage: run-search-bench.sh sqlite|postgres RESOURCES}
resources=${2:?usage: run-search-bench.sh sqlite|postgres RESOURCES}
seed=${SEED:-1}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/carnet-target}
bin=$CARGO_TARGET_DIR/release
dir=${BENCH_DIR:-/var/tmp/carnet-bench}
pg_admin=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
out=$dir/results/$backend-$resources
mkdir -p "$dir" "$out"
log() { echo "== $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$out/summary.txt"; }

if [[ -z ${SKIP_BUILD:-} ]]; then
  (cd "$root" && cargo build --release -p carnet -p carnet-benches --bins)
fi

data=$dir/data-$resources-seed$seed
if [[ ! -f $data/.done ]]; then
  log "generating $resources resources into $data"
  "$bin/carnet-gen" --resources "$resources" --seed "$seed" --out "$data"
  touch "$data/.done"
fi

case $backend in
  sqlite)
    db_file=$dir/carnet-$resources-seed$seed.db
    url="sqlite://$db_file"
    [[ -n ${RELOAD:-} ]] && rm -f "$db_file" "$db_file-wal" "$db_file-shm" "$db_file.loaded"
    loaded_marker=$db_file.loaded
    ;;
  postgres)
    name=carnet_bench_${resources}_s$seed
    url="${pg_admin%/*}/$name"
    loaded_marker=$dir/$name.loaded
    if [[ -n ${RELOAD:-} || ! -f $loaded_marker ]]; then
      psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
      rm -f "$loaded_marker"
    fi
    ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac

if [[ ! -f $loaded_marker ]]; then
  log "loading into $url"
  "$bin/carnet" import "$data" --database-url "$url" 2>&1 | tee "$out/load.txt"
  touch "$loaded_marker"
fi
if [[ $backend == sqlite ]]; then
  du -h "$db_file" | tee -a "$out/summary.txt"
else
  psql "$url" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))" | tee -a "$out/summary.txt"
fi

if [[ -z ${SKIP_CRITERION:-} ]]; then
  log "criterion search benches"
  (cd "$root" && CARNET_BENCH_DB=$url CARNET_BENCH_SEED=$seed cargo bench -p carnet-benches --bench search 2>&1) \
    | tee "$out/criterion.txt"
fi

"$bin/carnet-gen" --searches --seed "$seed" > "$out/searches.tsv"

port=$((20000 + RANDOM % 20000))
"$bin/carnet" client register --database-url "$url" --client-id "bench-$port" --name bench \
  --scope 'system/*.*' --secret > "$out/client.txt"
secret=$(grep -oE '[A-Za-z0-9_-]{20,}' "$out/client.txt" | tail -n 1)

if [[ -z ${SKIP_EXPLAIN:-} ]]; then
  log "plans"
  # PostgreSQL captures the statements; SQLite explains those captured at the same scale.
  python3 "$here/explain.py" --backend "$backend" --url "$url" --searches "$out/searches.tsv" \
    --queries "$dir/results/postgres-$resources/queries.json" \
    --carnet "$bin/carnet" --client-id "bench-$port" --client-secret "$secret" \
    > "$out/plans.txt" 2>&1 || echo "explain failed: see $out/plans.txt"
fi

if [[ -z ${SKIP_WRK:-} ]]; then
  base=http://127.0.0.1:$port/fhir
  # No rate limits: the searches are what is measured.
  CARNET_LOG=warn "$bin/carnet" serve --database-url "$url" --listen "127.0.0.1:$port" \
    --rate-limit-ip 0 --rate-limit-client 0 \
    --outbox-dir "$dir/outbox" --data-dir "$dir/data-dir" > "$out/server.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do curl -fs "$base/metadata" > /dev/null && break; sleep 1; done
  token() {
    curl -fs -X POST "http://127.0.0.1:$port/auth/token" \
      -d grant_type=client_credentials -d "client_id=bench-$port" --data-urlencode "client_secret=$secret" \
      -d 'scope=system/*.*' | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
  }
  log "wrk, one search at a time (1 connection, ${WRK_SECS:-10} s each)"
  : > "$out/wrk.txt"
  while IFS=$'\t' read -r sname spath; do
    echo "/fhir/$spath" > "$out/path-$sname.txt"
    res=$(WRK_PATHS=$out/path-$sname.txt WRK_TOKEN=$(token) \
      wrk -t1 -c1 -d"${WRK_SECS:-10}s" -s "$here/wrk/mix.lua" "http://127.0.0.1:$port" | tail -n 1)
    printf '%-18s %s\n' "$sname" "$res" | tee -a "$out/wrk.txt"
  done < "$out/searches.tsv"
  cut -f2 "$out/searches.tsv" | sed 's|^|/fhir/|' > "$out/paths-mix.txt"
  log "wrk, the mix (2 threads, 8 connections, ${MIX_SECS:-30} s)"
  res=$(WRK_PATHS=$out/paths-mix.txt WRK_TOKEN=$(token) \
    wrk -t2 -c8 -d"${MIX_SECS:-30}s" -s "$here/wrk/mix.lua" "http://127.0.0.1:$port" | tail -n 1)
  printf '%-18s %s\n' "mix" "$res" | tee -a "$out/wrk.txt"
fi

log "done: results in $out"
