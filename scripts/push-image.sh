#!/usr/bin/env bash
# make push-image: copies the two images of dist/oci (make dist) to $1 with skopeo, tagged
# $2 (the Wasm image) and $2-compat (the Docker-compatible one). $1 is a skopeo transport
# and name: docker://ghcr.io/OWNER/wsgate for a registry, oci:DIR for a local layout (the
# default, which CI copies to). REGISTRY_USER and REGISTRY_TOKEN, when both are set, log in.
# skopeo checks every blob's digest as it copies.
set -euo pipefail
cd "$(dirname "$0")/.."
destination=${1:?usage: push-image.sh DESTINATION VERSION}
version=${2:?usage: push-image.sh DESTINATION VERSION}
[[ -f dist/oci/index.json ]] || { echo "push-image: no dist/oci: run make dist" >&2; exit 1; }
creds=()
if [[ -n ${REGISTRY_USER:-} && -n ${REGISTRY_TOKEN:-} ]]; then
  creds=(--dest-creds "$REGISTRY_USER:$REGISTRY_TOKEN")
fi
if [[ $destination == oci:* ]]; then
  mkdir -p "${destination#oci:}"
fi
for tag in "$version" "$version-compat"; do
  skopeo copy --quiet "${creds[@]}" "oci:dist/oci:$tag" "$destination:$tag"
  echo "push-image: oci:dist/oci:$tag -> $destination:$tag"
done
