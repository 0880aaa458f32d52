#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 60).
# Each target asserts a property (fuzz/properties.rs). A failure fails the run, and its input
# is copied to fuzz/regressions/<target>/: commit it with the fix, and make test replays it
# (tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo fuzz passes -Z flags (sancov); stable rustc accepts them with RUSTC_BOOTSTRAP. No
# sanitizer: the code is memory-safe Rust, and what is hunted is panics, which would kill
# the Wasm VM.
export RUSTC_BOOTSTRAP=1
for target in token jwks discovery config rsa_differential; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer none -O "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
      -- -max_total_time="$seconds" -rss_limit_mb=4096 >"$log" 2>&1; then
    tail -n 40 "$log"
    mkdir -p "fuzz/regressions/$target"
    for input in fuzz/artifacts/"$target"/*; do
      [[ -f $input ]] && cp "$input" "fuzz/regressions/$target/"
    done
    echo "fuzz: $target failed; the input is in fuzz/regressions/$target/ (commit it with the fix)" >&2
    exit 1
  fi
  echo "fuzz: $target: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1 | sed 's/\s\+/ /g') (${seconds} s, no crash)"
  rm -f "$log"
done
