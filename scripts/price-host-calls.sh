#!/usr/bin/env bash
# Prices the host calls of a request (#31): builds the module once for each Cargo.toml
# `bench-omit-*` feature (each leaves one kind of host call out; never shipped), then runs
# make bench's A/B (--ab-only --together: both modules' Envoys loaded at once on one CPU,
# round by round) of each against the whole module. What a variant saves is what that call
# costs. Writes each run's result under $1 (default: a temporary directory) and prints
# where. Needs make build and make envoy-setup first; rustup's wasm target only.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-$(mktemp -d)}
rounds=${ROUNDS:-5}
whole=target/wasm32-wasip1/release/wsgate.wasm
[[ -f $whole ]] || { echo "price-host-calls: no $whole: run make build" >&2; exit 1; }
mkdir -p "$results"
for feature in bench-omit-edits bench-omit-fields bench-omit-stats; do
  variant=target/variants/wsgate-$feature.wasm
  scripts/build-wasm.sh variant "$feature" "$variant"
  mkdir -p "$results/$feature"
  WSGATE_WASM=$variant cargo run --quiet --release -p wsgate-bench --bin wsgate-bench -- \
    --ab-only --together --baseline-module "$whole" --rounds "$rounds" \
    --results "$results/$feature"
done
echo "price-host-calls: results in $results"
