#!/usr/bin/env bash
# Fetches the official R4 definitions and examples from the npm registry into a cache
# outside the repository (they are large and not ours to commit). Idempotent.
# Prints the directory that holds the unpacked `package/` folder.
set -euo pipefail
dest="${CARNET_FHIR_PACKAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/carnet/fhir-packages}"
name="hl7.fhir.r4.examples"
version="4.0.1"
dir="$dest/$name-$version"
if [ ! -f "$dir/package/package.json" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$dir"
  rm -rf "$tmp"
fi
echo "$dir"
