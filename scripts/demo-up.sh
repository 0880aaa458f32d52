#!/usr/bin/env bash
# make demo-up: the stack of envoy/envoy.yaml on its own ports, left running:
#   issuer 127.0.0.1:8081, echo upstream 127.0.0.1:8080, Envoy 127.0.0.1:10000 (admin 9901).
# make demo-down stops it. Logs go to target/demo-up/.
set -euo pipefail
cd "$(dirname "$0")/.."
state=target/demo-up
scripts/demo-down.sh >/dev/null 2>&1 || true
mkdir -p "$state"
cargo build --quiet -p testbed --bins

if [[ -n ${ENVOY_BIN:-} ]]; then envoy=("$ENVOY_BIN")
elif command -v func-e >/dev/null 2>&1; then envoy=(func-e run)
else envoy=(.venv/bin/envoy)
fi

# Each process runs under a small shell of its own session that waits for it: Envoy ends
# itself when its parent exits, so the parent must outlive this script. demo-down kills the
# whole session.
start() { # name, command...
  local name=$1; shift
  setsid bash -c '"$@" & echo $! > "'"$state/$name.pid"'"; wait' _ "$@" >"$state/$name.log" 2>&1 < /dev/null &
}
start issuer target/debug/wsgate-issuer --listen 127.0.0.1:8081
start echo target/debug/wsgate-echo 127.0.0.1:8080
start envoy "${envoy[@]}" -c envoy/envoy.yaml --use-dynamic-base-id --file-flush-interval-msec 100

for _ in $(seq 1 100); do
  [[ $(curl -s http://127.0.0.1:9901/ready 2>/dev/null) == LIVE ]] && break
  sleep 0.2
done
if [[ $(curl -s http://127.0.0.1:9901/ready 2>/dev/null) != LIVE ]]; then
  echo "demo-up: Envoy is not ready; see $state/envoy.log" >&2
  tail -n 20 "$state/envoy.log" >&2
  scripts/demo-down.sh
  exit 1
fi

cat <<TXT
wsgate demo stack is up (${envoy[*]}): Envoy http://127.0.0.1:10000, admin http://127.0.0.1:9901,
issuer http://127.0.0.1:8081, echo upstream 127.0.0.1:8080. Logs: $state/.

From a browser: open http://127.0.0.1:8081/ and connect with each token source.

From a shell:

  TOKEN=\$(curl -s 'http://127.0.0.1:8081/token?sub=alice')
  curl -i http://127.0.0.1:10000/ws                                  # 400: not a WebSocket
  WS=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
  curl -i "\${WS[@]}" http://127.0.0.1:10000/ws                       # 401: no token
  curl -i "\${WS[@]}" -H "Authorization: Bearer \$TOKEN.x" http://127.0.0.1:10000/ws    # 401 with its reason
  curl -i --max-time 2 "\${WS[@]}" -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:10000/ws   # 101
  curl -i --max-time 2 "\${WS[@]}" "http://127.0.0.1:10000/ws?access_token=\$TOKEN"               # 101, token from the query
  READER=\$(curl -s 'http://127.0.0.1:8081/token?sub=bob&roles=reader')
  curl -i --max-time 2 "\${WS[@]}" -H "Authorization: Bearer \$READER" http://127.0.0.1:10000/ws  # 403: roles lack media.stream
  curl -s -X POST http://127.0.0.1:8081/rotate                       # new signing key; new tokens work at once
  curl -s 'http://127.0.0.1:9901/stats?filter=wsgate'                # wsgate's counters
  cat $state/echo.log                                                # what the upstream saw
  grep wasm $state/envoy.log                                         # wsgate's decisions

Stop it with: make demo-down
TXT
