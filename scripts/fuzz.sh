#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 60).
# A crash fails the run; cargo fuzz leaves the input under fuzz/artifacts/<target>/, which
# then becomes a regression test.
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
    echo "fuzz: $target crashed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "fuzz: $target: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1 | sed 's/\s\+/ /g') (${seconds} s, no crash)"
  rm -f "$log"
done
