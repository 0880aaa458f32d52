#!/usr/bin/env bash
# Builds the module and leaves it at target/wasm32-wasip1/release/wsgate.wasm (and the
# test-only probe module beside it, wsgate_probe.wasm).
#
#   scripts/build-wasm.sh          release build of the module
#   scripts/build-wasm.sh lint     clippy (warnings denied) for the wasm target
#   scripts/build-wasm.sh variant FEATURES OUT
#                                  the module built the same way with Cargo features FEATURES
#                                  (bench-only builds: scripts/price-host-calls.sh), at OUT;
#                                  rustup's target only
#
# With the rustup target this is a plain `cargo build --release --target wasm32-wasip1`.
# With the Debian fallback (see wasm-toolchain.sh) std is built from source by Debian's
# cargo, in its own target directory so the two compilers never invalidate each other's
# host artifacts; the module is then copied to the same final path.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}

# wsgate-probe: a test-only module (tests/envoy_signature_vectors.rs), never shipped. It
# links wsgate without its entry point (feature "module" off), so it is built in a target
# directory of its own: cargo names wsgate's artifacts without a hash, and the two builds
# would otherwise overwrite each other's (and rebuild each other every time).
build_probe() { # cargo command, extra flags...
  local cargo=$1; shift
  CARGO_TARGET_DIR=target/probe "$cargo" build -p wsgate-probe --release \
    --target wasm32-wasip1 "$@"
  mkdir -p "$(dirname "$out")"
  cp --remove-destination target/probe/wasm32-wasip1/release/wsgate_probe.wasm \
    "$(dirname "$out")/wsgate_probe.wasm"
}
mode=$(scripts/wasm-toolchain.sh)
out=target/wasm32-wasip1/release/wsgate.wasm

# Panic locations name their source files in the module. Without the machine's registry
# directory (`/root/.cargo/registry/src/index.crates.io-<hash>/serde_json-1.0.x/...` becomes
# `serde_json-1.0.x/...`) they are about 1.9 KB shorter (#14's 512 KiB budget), and the
# module no longer depends on where its builder keeps crates.
remap=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [[ -d $dir ]] && remap+=" --remap-path-prefix=$dir="
done

# binaryen's wasm-opt, for size: see below, where the module goes through it.
optimise() { # in out
  wasm-opt -Oz --converge --low-memory-unused --enable-bulk-memory --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-mutable-globals "$1" -o "$2"
}

if [[ $what == variant ]]; then
  features=${2:?variant FEATURES OUT}
  variant_out=${3:?variant FEATURES OUT}
  [[ $mode == rustup ]] || { echo "build-wasm: variant builds need rustup's target" >&2; exit 1; }
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS:-}$remap" \
    CARGO_TARGET_DIR=target/variants cargo build --quiet -p wsgate --release \
    --target wasm32-wasip1 --features "$features"
  mkdir -p "$(dirname "$variant_out")"
  optimise target/variants/wasm32-wasip1/release/wsgate.wasm "$variant_out"
  exit 0
fi

if [[ $mode == rustup ]]; then
  if [[ $what == lint ]]; then
    # The probe too: its entry point is wasm-only code that no native build sees.
    exec cargo clippy -p wsgate -p wsgate-probe --target wasm32-wasip1 --release -- -D warnings
  fi
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS:-}$remap" \
    cargo build -p wsgate --release --target wasm32-wasip1
  build_probe cargo
else
  linker=""
  if command -v rustc >/dev/null 2>&1; then
    candidate="$(rustc --print sysroot 2>/dev/null)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
    [[ -x $candidate ]] && linker=$candidate
  fi
  if [[ -z $linker ]]; then
    linker=$(command -v wasm-ld wasm-ld-19 2>/dev/null | head -n1 || true)
  fi
  [[ -n $linker ]] || { echo "build-wasm: no wasm linker (rustup's rust-lld or Debian's lld-19)" >&2; exit 1; }
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_WASM32_WASIP1_LINKER=$linker
  export RUSTFLAGS="-L /usr/lib/wasm32-wasi"
  export CARGO_TARGET_DIR=target/wasm-debian
  export RUSTC=/usr/bin/rustc
  if [[ $what == lint ]]; then
    # Debian ships no clippy; deny warnings from the compiler itself for the wasm target.
    echo "build-wasm: Debian fallback has no clippy; checking the wasm target with rustc -D warnings" >&2
    RUSTFLAGS="$RUSTFLAGS -D warnings" exec /usr/bin/cargo check -p wsgate --release \
      --target wasm32-wasip1 -Zbuild-std=std,panic_abort
  fi
  RUSTFLAGS="$RUSTFLAGS$remap --remap-path-prefix=/usr/lib/rustlib/src/rust/=" \
    /usr/bin/cargo build -p wsgate --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort
  mkdir -p "$(dirname "$out")"
  # Never write through the hardlink cargo may have left at $out (it would change its own copy).
  cp --remove-destination target/wasm-debian/wasm32-wasip1/release/wsgate.wasm "$out"
  build_probe /usr/bin/cargo -Zbuild-std=std,panic_abort
fi
# binaryen's wasm-opt, for size (#14 holds the module to 512 KiB; tests/shipping.rs checks):
# -Oz, --converge (repeat until nothing shrinks) and --low-memory-unused. That last one folds
# `x + C` (C under 1 KiB) into a load's or store's offset, which behaves differently only
# where `x + C` wraps past 4 GiB into the first KiB. rustc links with --stack-first, so that
# KiB is the far end of the 1 MiB stack: only a stack within 1 KiB of overflowing holds an
# object there, and then a folded access may trap (out of bounds) where the unfolded one
# would have reached it; never a silent wrong address. Before sha2's compact
# rounds: -Os 538 902 bytes, -Oz 531 501, all three 530 733. With it and the token-keyed
# cache, the warm request took 0.92x the Envoy CPU of the -Os module before them
# (bench/results/2026-11-29-warm-path.md, which also has the cold paths). Written to a
# temporary file and renamed, never through the hardlink cargo may have left at $out.
if command -v wasm-opt >/dev/null 2>&1; then
  optimise "$out" "$out.opt"
  mv -f "$out.opt" "$out"
  optimised="wasm-opt -Oz --converge --low-memory-unused"
else
  optimised="no wasm-opt: run make setup to install binaryen"
fi
# wsgate_canaries.wasm: a test-only build that logs a cut Authorization value and traps on
# a marker header (Cargo.toml's `leak-canary` and `trap-canary`), for tests/envoy_leaks.rs to
# prove its leak check can fail and tests/envoy_failure_policy.rs to kill a VM on demand.
# Its own target directory, like the probe's; no LTO, since nothing measures it.
canary=$(dirname "$out")/wsgate_canaries.wasm
if [[ $mode == rustup ]]; then
  CARGO_TARGET_DIR=target/canary CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo build -p wsgate --release --target wasm32-wasip1 --features leak-canary,trap-canary
  cp --remove-destination target/canary/wasm32-wasip1/release/wsgate.wasm "$canary"
else
  CARGO_TARGET_DIR=target/canary CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    /usr/bin/cargo build -p wsgate --release --target wasm32-wasip1 --features leak-canary,trap-canary \
    -Zbuild-std=std,panic_abort
  cp --remove-destination target/canary/wasm32-wasip1/release/wsgate.wasm "$canary"
fi
grep -q --binary-files=text "canary" "$out" && {
  echo "build-wasm: $out carries a test canary: it must never be built into the module" >&2
  exit 1
}
grep -q --binary-files=text "wsgate-bench-only" "$out" && {
  echo "build-wasm: $out is a bench-only build (it leaves host calls out or repeats steps): never the module" >&2
  exit 1
}
# The module must carry its entry point (feature "module"): without it Envoy would load it,
# and every request would fail.
for export in _initialize proxy_on_context_create proxy_on_request_headers; do
  grep -q --binary-files=text "$export" "$out" || {
    echo "build-wasm: $out does not export $export: built without feature \"module\"?" >&2
    exit 1
  }
done
echo "build-wasm: $out ($(stat -c %s "$out") bytes, $mode toolchain, $optimised)" >&2
