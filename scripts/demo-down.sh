#!/usr/bin/env bash
# make demo-down: stops what make demo-up started.
set -u
cd "$(dirname "$0")/.."
for name in envoy echo issuer; do
  pidfile=target/demo-up/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  # The whole session: the process and the shell that waits for it.
  sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')
  [[ -n $sid ]] && pkill -s "$sid" 2>/dev/null
  kill "$pid" 2>/dev/null
  rm -f "$pidfile"
done
echo "demo stack stopped"
