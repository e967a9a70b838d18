#!/usr/bin/env bash
# Bounded fuzzing of the cargo-fuzz targets in fuzz/ (issue 8): every target runs for
# SECONDS (default 20) from its committed seeds (fuzz/seeds/<target>) on a scratch
# corpus. A crash fails the run; libFuzzer leaves the input in fuzz/artifacts/<target>/
# (reproduce with `cargo fuzz run -s none -O --codegen-units 64 <target> <file>`).
# Stable toolchain with `-s none` (no sanitizer: the code is safe Rust, a panic is the
# crash we look for), so no nightly is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# Outside the clone and reused when present, like the test suite's target directory.
export CARGO_TARGET_DIR="${CARNET_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/carnet-fuzz-target}"
# cargo-fuzz's default of one codegen unit per crate makes fhirbolt's R4 model (in the
# `resource` target) take over ten minutes to build; with 64 the whole build from nothing
# took 9 minutes here (fuzz/README.md).
cargo fuzz build -s none -O --codegen-units 64
for target in $(cargo fuzz list); do
  corpus=$(mktemp -d)
  log=$(mktemp)
  seeds=("fuzz/seeds/$target")
  # `resource` takes the same JSON bodies as `validate`; its own seeds are the XML ones.
  [[ $target == resource ]] && seeds+=(fuzz/seeds/validate)
  if cargo fuzz run -s none -O --codegen-units 64 "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1) ($(grep -E 'DONE' "$log" | grep -oE 'cov: [0-9]+' | tail -1))"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  rm -rf "$corpus" "$log"
done
