#!/usr/bin/env bash
# The load tools the benches use, from Debian's packages when missing: wrk (HTTP load),
# curl and jq (tokens and set-up). Idempotent.
set -euo pipefail
missing=()
for tool in wrk curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-tools: installing ${missing[*]} from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
