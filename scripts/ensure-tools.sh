#!/usr/bin/env bash
# Installs the named command-line tools from Debian's packages when they are missing
# (the package has the tool's name). Idempotent: `scripts/ensure-tools.sh curl jq`.
set -euo pipefail
missing=()
for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-tools: installing ${missing[*]} from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
