#!/usr/bin/env bash
# make setup: Debian's Chromium and chromedriver for tests/browser.rs (idempotent). Where
# apt-get cannot install them, says how and goes on: the browser test then fails, naming
# them, and never skips.
set -euo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if [[ -n ${WSGATE_CHROMIUM:-} && -n ${WSGATE_CHROMEDRIVER:-} ]] || have; then
  exit 0
fi
source "$(dirname "$0")/apt.sh"
if apt_can_install; then
  echo "browser-setup: installing Debian's chromium and chromium-driver" >&2
  apt_install chromium chromium-driver
  have || { echo "browser-setup: chromium or chromedriver still missing after apt-get" >&2; exit 1; }
else
  echo "browser-setup: no chromium/chromedriver, and apt-get cannot install them here (not Debian, or neither root nor passwordless sudo)." >&2
  echo "  Install Chromium and a matching chromedriver, or set WSGATE_CHROMIUM and WSGATE_CHROMEDRIVER;" >&2
  echo "  tests/browser.rs fails without them." >&2
fi
