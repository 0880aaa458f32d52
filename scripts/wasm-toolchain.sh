#!/usr/bin/env bash
# Makes a wasm32-wasip1 build possible and prints how: "rustup" or "debian".
#
#   rustup  the normal path: `rustup target add wasm32-wasip1` (bounded by a timeout, since
#           it downloads and hangs where rustup's servers cannot be reached);
#   debian  the offline fallback: Debian's rustc/cargo 1.96 (rustc-web, cargo-web), its std
#           sources (rust-web-src) and wasi-libc, building std with -Zbuild-std.
#
# WSGATE_WASM_TOOLCHAIN=rustup|debian forces one (default: auto, rustup first).
# Idempotent: installs only what is missing. Progress goes to stderr; stdout is the mode.
set -euo pipefail

mode=${WSGATE_WASM_TOOLCHAIN:-auto}
say() { echo "wasm-toolchain: $*" >&2; }

rustup_has_target() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1
}

# binaryen's wasm-opt shrinks the module (build-wasm.sh); from Debian where it can be had.
if ! command -v wasm-opt >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  say "installing binaryen (wasm-opt)"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  { $sudo apt-get install -y -qq binaryen || { $sudo apt-get update -qq && $sudo apt-get install -y -qq binaryen; }; } >&2 ||
    say "could not install binaryen; the module will be built without wasm-opt"
fi

if [[ $mode == auto || $mode == rustup ]]; then
  if rustup_has_target; then
    echo rustup
    exit 0
  fi
  if command -v rustup >/dev/null 2>&1; then
    say "adding the wasm32-wasip1 target with rustup (up to ${WSGATE_RUSTUP_TIMEOUT:-90} s)"
    if timeout "${WSGATE_RUSTUP_TIMEOUT:-90}" rustup target add wasm32-wasip1 >&2 && rustup_has_target; then
      echo rustup
      exit 0
    fi
    say "rustup could not add the target (no route to its servers?)"
  fi
  if [[ $mode == rustup ]]; then
    say "WSGATE_WASM_TOOLCHAIN=rustup, but the target is unavailable"
    exit 1
  fi
fi

packages=(rustc-web cargo-web rust-web-src wasi-libc)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
[[ -x /usr/bin/cargo && -d /usr/lib/rustlib/src/rust && -f /usr/lib/wasm32-wasi/libc.a ]] || {
  say "the Debian fallback is incomplete (need /usr/bin/cargo, /usr/lib/rustlib/src/rust, /usr/lib/wasm32-wasi/libc.a)"
  exit 1
}
echo debian
