#!/usr/bin/env bash
# The HTTP load suite in one command: a release `carnet` on a fresh database, a real
# client_credentials token, then `wrk` (2 threads, on this same machine) per scenario.
# Each scenario prints throughput, p50/p95/p99 and the server's memory (RSS).
#
#   benches/load.sh                         # SQLite, every scenario
#   benches/load.sh postgres read post      # PostgreSQL, two scenarios
#
# Scenarios: read (audited GET Patient/{id}: token check, policy, audit record committed
# before the answer), practitioner (the same read by a practitioner signed in through
# the SMART flow on `carnet demo`'s data: also the R4 prior-access fact), post (POST Observation: check, index, policy tables, audit),
# crud (50 % read, 20 % create, 20 % update, 10 % delete of Observations), ingest
# (Synthea-style transaction Bundles, ~110 resources each, 4 connections), app (the
# patient-app pattern: `carnet demo`, sign-ins through the SMART flow, then a patient's
# token on $everything, AuditEvent search, Patient and Observation search), static (the
# same bytes from memory by a bare axum server: the ceiling), everything
# (Patient/$everything of a patient with 2,000 resources: first page, then all pages).
# Environment: SECS (10), CONNS (32), CARNET_BIN (default: the release build in
# $CARGO_TARGET_DIR), SKIP_BUILD=1, PG_ADMIN (postgres://postgres@127.0.0.1:5432/postgres),
# SERVER_LOG (the server's CARNET_LOG: warn).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
backend=${1:-sqlite}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(read practitioner post crud ingest app static everything)
secs=${SECS:-10}
conns=${CONNS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/carnet-release}
bin_dir=$CARGO_TARGET_DIR/release
carnet=${CARNET_BIN:-$bin_dir/carnet}
"$root/scripts/ensure-tools.sh" wrk curl jq
if [[ -z ${SKIP_BUILD:-} ]]; then
  (cd "$root" && cargo build --release -p carnet -p carnet-benches --bins)
fi
work=$(mktemp -d /var/tmp/carnet-load.XXXXXX)
port=$((20000 + RANDOM % 20000))
case $backend in
  sqlite) url="sqlite://$work/carnet.db" ;;
  postgres)
    pg_admin=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
    db=carnet_load_$$
    psql "$pg_admin" -qc "CREATE DATABASE $db"
    url="${pg_admin%/*}/$db"
    ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ $backend == postgres ]] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "== $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }

"$carnet" client register --database-url "$url" --client-id load --name load --scope 'system/*.*' --secret \
  --data-dir "$work/data" --outbox-dir "$work/outbox" > "$work/client.txt"
secret=$(grep -oE '[A-Za-z0-9_-]{20,}' "$work/client.txt" | tail -n 1)
# The rate limiters stay in the path (their cost is measured) with limits no run reaches.
CARNET_LOG=${SERVER_LOG:-warn} "$carnet" serve --database-url "$url" --listen "127.0.0.1:$port" \
  --rate-limit-ip 100000000 --rate-limit-client 100000000 \
  --data-dir "$work/data" --outbox-dir "$work/outbox" > "$work/server.log" 2>&1 &
server=$!
pids+=("$server")
base=http://127.0.0.1:$port/fhir
for _ in $(seq 1 100); do curl -fs "$base/metadata" > /dev/null && break; sleep 0.2; done
rss() { echo "$(( $(ps -o rss= -p "$server") / 1024 )) MB"; }
token() {
  curl -fs "http://127.0.0.1:$port/auth/token" -d grant_type=client_credentials \
    -d client_id=load --data-urlencode "client_secret=$secret" -d scope='system/*.*' | jq -r .access_token
}
log "carnet $backend on :$port, idle RSS $(rss)"
TOKEN=$(token)
export TOKEN
cat > "$work/patient.json" <<'JSON'
{"resourceType":"Patient","id":"bench-patient","identifier":[{"system":"https://ramq.gouv.qc.ca/nam","value":"TREM80022912"}],"name":[{"family":"Tremblay","given":["Élise","Marie"]}],"telecom":[{"system":"phone","value":"514-555-0100","use":"home"}],"gender":"female","birthDate":"1980-02-29","address":[{"line":["1000 rue Sherbrooke"],"city":"Montréal","state":"QC","postalCode":"H3A 0G4"}]}
JSON
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/fhir+json' \
  --data-binary @"$work/patient.json" "$base/Patient/bench-patient" -o "$work/stored.json"

# Audit records are logged before each answer and stored as AuditEvents by the
# projector; a scenario starts once the previous ones' backlog is stored (how long that
# took is printed: it is the projector catching up).
drain() {
  local t0 rows
  t0=$(date +%s%N)
  for _ in $(seq 1 600); do
    rows=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^carnet_audit_log_rows/ {print $2}')
    [[ $rows == 0 ]] && break
    sleep 0.5
  done
  echo "   audit log emptied (rows left: $rows) $(( ($(date +%s%N) - t0) / 1000000 )) ms after the run"
}
for s in "${scenarios[@]}"; do
  TOKEN=$(token)
  case $s in
    read)
      log "read: GET Patient/bench-patient, $conns connections, ${secs}s"
      wrk -t2 -c"$conns" -d"${secs}s" -s "$here/wrk/report.lua" "$base/Patient/bench-patient" | tail -n 1
      ;;
    post)
      log "post: POST Observation, $((conns / 2)) connections, ${secs}s"
      WRK_METHOD=POST WRK_BODY_FILE="$here/wrk/observation.json" \
        wrk -t2 -c"$((conns / 2))" -d"${secs}s" -s "$here/wrk/report.lua" "$base/Observation" | tail -n 1
      ;;
    crud)
      for k in $(seq 0 199); do
        jq -c --arg id "crud-$k" '. + {id: $id}' "$here/wrk/observation.json" |
          curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/fhir+json' \
            -H 'Prefer: return=minimal' --data-binary @- "$base/Observation/crud-$k" -o /dev/null
      done
      log "crud: 50 % read, 20 % create, 20 % update, 10 % delete, $((conns / 2)) connections, ${secs}s"
      WRK_BODY_FILE="$here/wrk/observation.json" \
        wrk -t2 -c"$((conns / 2))" -d"${secs}s" -s "$here/wrk/crud.lua" "http://127.0.0.1:$port" | tail -n 1
      ;;
    ingest)
      # Transaction Bundles as Synthea writes them: one per patient, urn:uuid references,
      # after the Bundle of shared practitioners and organisations.
      "$bin_dir/carnet-gen" --patients 16 --seed 7 --format synthea --out "$work/ingest" > /dev/null
      curl -fs -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/fhir+json' \
        -H 'Prefer: return=minimal' --data-binary @"$work/ingest/synthea-0000000-shared.json" "$base" -o /dev/null
      ls "$work"/ingest/synthea-00000[0-9][0-9].json | grep -v shared > "$work/ingest.txt"
      per=$(for f in $(cat "$work/ingest.txt"); do jq '.entry | length' "$f"; done | awk '{s+=$1} END {printf "%.1f", s/NR}')
      log "ingest: POST transaction Bundles ($per resources each on average), 4 connections, ${secs}s"
      res=$(WRK_BODIES="$work/ingest.txt" wrk -t2 -c4 -d"${secs}s" -s "$here/wrk/bodies.lua" "$base" | tail -n 1)
      echo "$res"
      rps=$(sed 's/rps=\([0-9.]*\).*/\1/' <<< "$res")
      echo "   resources/s: $(awk -v r="$rps" -v p="$per" 'BEGIN {printf "%.0f", r * p}')"
      ;;
    app | practitioner)
      "$carnet" demo --database-url "$url" --data-dir "$work/data" --outbox-dir "$work/outbox" > /dev/null
      auth=http://127.0.0.1:$port/auth app=http://127.0.0.1:8765/callback
      # signin USER SCOPE: the SMART flow with PKCE, as the demo app.
      signin() {
        local verifier challenge tx six code
        verifier=$(openssl rand -hex 32)
        challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | openssl base64 | tr '+/' '-_' | tr -d '=\n')
        tx=$(curl -s "$auth/authorize?response_type=code&client_id=demo-app&redirect_uri=$app&scope=$2&state=xyz&aud=$base&code_challenge=$challenge&code_challenge_method=S256" |
          sed -n 's/.*name="tx" value="\([^"]*\)".*/\1/p')
        curl -s -o /dev/null -d tx="$tx" -d username="$1" -d password=carnet-demo "$auth/authorize"
        six=$(jq -r .code "$(ls -t "$work"/outbox/*.json | head -1)")
        code=$(curl -s -o /dev/null -w '%{redirect_url}' -d tx="$tx" -d code="$six" "$auth/authorize" | sed 's/.*code=\([^&]*\).*/\1/')
        curl -s -d grant_type=authorization_code -d code="$code" -d client_id=demo-app \
          -d redirect_uri="$app" -d code_verifier="$verifier" "$auth/token" | jq -r .access_token
      }
      if [[ $s == practitioner ]]; then
        DOC=$(signin dr.cote 'openid+fhirUser+user/*.rs')
        [[ $DOC == null || -z $DOC ]] && { echo "sign-in failed" >&2; exit 1; }
        log "practitioner: Dre Côté's token on GET Patient/demo-lea (policy, prior access, audit), $conns connections, ${secs}s"
        TOKEN=$DOC wrk -t2 -c"$conns" -d"${secs}s" -s "$here/wrk/report.lua" "$base/Patient/demo-lea" | tail -n 1
      else
        n=${SIGNINS:-10}
        start=$(date +%s%N)
        for _ in $(seq 1 "$n"); do LEA=$(signin lea 'launch/patient+openid+fhirUser+patient/*.rs'); done
        log "app: $n sign-ins (authorize, password, emailed code, token; curl, one after another): $(( ($(date +%s%N) - start) / 1000000 / n )) ms each"
        [[ $LEA == null || -z $LEA ]] && { echo "sign-in failed" >&2; exit 1; }
        printf '%s\n' "/fhir/Patient/demo-lea/\$everything" "/fhir/AuditEvent?patient=Patient/demo-lea&_sort=-date&_count=20" \
          "/fhir/Patient/demo-lea" "/fhir/Observation?patient=Patient/demo-lea&_count=20" > "$work/app.txt"
        log "app: Léa's token on \$everything, AuditEvent search, Patient, Observation search in turn, $conns connections, ${secs}s"
        WRK_PATHS="$work/app.txt" WRK_TOKEN=$LEA \
          wrk -t2 -c"$conns" -d"${secs}s" -s "$here/wrk/mix.lua" "http://127.0.0.1:$port" | tail -n 1
      fi
      ;;
    static)
      sport=$((port + 1))
      "$bin_dir/static-server" "127.0.0.1:$sport" "$work/stored.json" > /dev/null 2>&1 &
      pids+=("$!")
      sleep 0.5
      log "static: the same Patient bytes from memory, $conns connections, ${secs}s"
      wrk -t2 -c"$conns" -d"${secs}s" -s "$here/wrk/report.lua" "http://127.0.0.1:$sport/fhir/Patient/bench-patient" | tail -n 1
      ;;
    everything)
      # A patient with 2,000 resources (Observations in one transaction), then the
      # first page of their $everything (1,000 entries) with one connection, and every
      # page of it by following the next links.
      n=${EVERYTHING_RESOURCES:-2000}
      python3 - "$n" > "$work/everything-bundle.json" <<'PY'
import json, sys
n = int(sys.argv[1])
entries = [{"resource": {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/bench-patient"},
            "effectiveDateTime": f"2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
            "request": {"method": "POST", "url": "Observation"}} for i in range(n - 1)]
print(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
PY
      curl -fs -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/fhir+json' \
        -H 'Prefer: return=minimal' --data-binary @"$work/everything-bundle.json" "$base" -o /dev/null
      log "everything: GET Patient/bench-patient/\$everything?_count=1000 ($n resources), 1 connection, ${secs}s"
      wrk -t1 -c1 -d"${secs}s" -s "$here/wrk/report.lua" "$base/Patient/bench-patient/\$everything?_count=1000" | tail -n 1
      start=$(date +%s%N)
      url="$base/Patient/bench-patient/\$everything?_count=1000"
      pages=0 entries=0
      while [[ -n $url && $url != null ]]; do
        curl -fs -H "Authorization: Bearer $TOKEN" "$url" -o "$work/page.json"
        pages=$((pages + 1))
        entries=$((entries + $(jq '.entry | length' "$work/page.json")))
        url=$(jq -r '.link[] | select(.relation == "next") | .url' "$work/page.json")
      done
      echo "   all pages: $pages pages, $entries entries in $(( ($(date +%s%N) - start) / 1000000 )) ms (curl + jq)"
      ;;
    *) echo "unknown scenario $s" >&2 ;;
  esac
  echo "   server RSS after: $(rss)"
  drain
done
