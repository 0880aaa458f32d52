#!/usr/bin/env bash
# What `make bench` needs beyond the build: `perf`, to split Envoy's CPU per request by where
# the code lives. Best effort: without it the bench still measures CPU per request and says
# that the split is missing. Idempotent.
set -euo pipefail
say() { echo "bench-setup: $*" >&2; }

if command -v perf >/dev/null 2>&1 && perf --version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "perf not found and no apt-get: install perf to get the per-request CPU split"
  exit 0
fi
sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"
say "installing linux-perf"
{ $sudo apt-get install -y -qq linux-perf ||
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq linux-perf; }; } >&2 ||
  say "could not install linux-perf; the bench will run without the CPU split"
