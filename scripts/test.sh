#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test on SQLite and PostgreSQL.
# PostgreSQL tests never skip: this script makes sure one answers first.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the clone is reused when present (much faster), never
# required: a fresh machine simply builds from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/carnet-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/ensure-postgres.sh
# tests/walkthrough.rs runs the README's shell walk-through, which uses these tools.
scripts/ensure-tools.sh curl jq openssl
# The official R4 examples and definitions, fetched from npm at test time.
CARNET_FHIR_PACKAGES_DIR=$(scripts/fetch-fhir-packages.sh)
export CARNET_FHIR_EXAMPLES="$CARNET_FHIR_PACKAGES_DIR/package"

cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked
# Bounded fuzzing of the parsers clients reach (fuzz/README.md).
scripts/fuzz.sh 20
