# Sourced by the setup scripts (browser-setup.sh, release-setup.sh): Debian packages through
# apt-get, as root or with passwordless sudo.
#
#   apt_can_install       whether apt-get can install here
#   apt_install PKG...    updates the package lists and installs PKG (fails as apt-get does)

apt_sudo() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

apt_can_install() {
  command -v apt-get >/dev/null 2>&1 && { [[ $(id -u) == 0 ]] || sudo -n true 2>/dev/null; }
}

apt_install() {
  apt_sudo apt-get update -qq
  apt_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
