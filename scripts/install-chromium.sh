#!/usr/bin/env bash
# Installs Debian's chromium (headless browser of the dashboard test, tests/dashboard.rs) when it
# is missing. Safe to run again: does nothing when /usr/bin/chromium exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

# The browser tests run in parallel (one process each): one installs, the others wait for it
# here instead of failing on apt's lock, then find chromium installed.
if [ -z "${TGWATCH_CHROMIUM_LOCKED:-}" ] && command -v flock >/dev/null; then
  exec env TGWATCH_CHROMIUM_LOCKED=1 flock "${TMPDIR:-/tmp}/tgwatch-install-chromium.lock" "$0" "$@"
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "installing chromium (Debian package) for the dashboard test"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
