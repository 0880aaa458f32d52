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
mkdir -p "$results" target/pricing
# As scripts/build-wasm.sh builds the module: the registry's paths cut from panic locations,
# so that a variant differs from the whole module only by what its feature leaves out.
remap=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [[ -d $dir ]] && remap+=" --remap-path-prefix=$dir="
done
for feature in bench-omit-edits bench-omit-fields bench-omit-stats; do
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS:-}$remap" \
    CARGO_TARGET_DIR=target/pricing cargo build --quiet -p wsgate --release \
    --target wasm32-wasip1 --features "$feature"
  variant=target/pricing/wsgate-$feature.wasm
  wasm-opt -Oz --converge --low-memory-unused --enable-bulk-memory --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-mutable-globals \
    target/pricing/wasm32-wasip1/release/wsgate.wasm -o "$variant"
  mkdir -p "$results/$feature"
  WSGATE_WASM=$variant cargo run --quiet --release -p wsgate-bench --bin wsgate-bench -- \
    --ab-only --together --baseline-module "$whole" --rounds "$rounds" \
    --results "$results/$feature"
done
echo "price-host-calls: results in $results"
