#!/usr/bin/env bash
# Prices the steps of a request (#31): builds the module once for each bench-only feature
# of Cargo.toml (never shipped): `bench-omit-*` leaves one kind of host call out, and
# `bench-repeat-*` runs one step ten more times (src/bench_repeat.rs). Then runs make bench's A/B
# (--ab-only --together: both modules' Envoys loaded at once on one CPU, round by round; a
# warm request, and a cold RS256 one with Envoy's crypto) of each against the whole module.
# What an omission saves is what its calls cost; what a repeat adds, over its count, is what
# its step costs. Usage: price-host-calls.sh [RESULTS [FEATURE...]] (default: a temporary
# directory, every feature). Writes each run's result under RESULTS and prints where. Needs
# make build and make envoy-setup first; rustup's wasm target only.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-$(mktemp -d)}
shift || true
rounds=${ROUNDS:-5}
whole=target/wasm32-wasip1/release/wsgate.wasm
[[ -f $whole ]] || { echo "price-host-calls: no $whole: run make build" >&2; exit 1; }
features=("$@")
if ((${#features[@]} == 0)); then
  mapfile -t features < <(grep -oE '^bench-(omit|repeat)-[a-z-]+' Cargo.toml)
fi
mkdir -p "$results"
# Every build first: a build beside a run would be measured with it.
for feature in "${features[@]}"; do
  scripts/build-wasm.sh variant "$feature" "target/variants/wsgate-$feature.wasm"
done
for feature in "${features[@]}"; do
  mkdir -p "$results/$feature"
  WSGATE_WASM=target/variants/wsgate-$feature.wasm \
    cargo run --quiet --release -p wsgate-bench --bin wsgate-bench -- \
    --ab-only --together --baseline-module "$whole" --rounds "$rounds" \
    --results "$results/$feature"
done
echo "price-host-calls: results in $results"
