#!/usr/bin/env bash
# Find (or install) the browser of the dashboard's browser test
# (internal/server/ui_browser_integration_test.go, driven with chromedp).
#
#   scripts/chromium.sh   # prints the browser's path on the last line of stdout
#
# The browser is $SYNAPSE_TEST_CHROMIUM when set, else chromium (or chromium-browser)
# on PATH; as root with apt-get, Debian's chromium package is installed when there is
# none. No browser is an error (exit 1): the integration suite must run the test.
set -euo pipefail

log() { echo "chromium: $*" >&2; }
die() { log "$*"; exit 1; }

find_browser() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null
}

if [ -n "${SYNAPSE_TEST_CHROMIUM:-}" ]; then
  [ -x "$SYNAPSE_TEST_CHROMIUM" ] || die "SYNAPSE_TEST_CHROMIUM=$SYNAPSE_TEST_CHROMIUM is not an executable: unset it, or name the browser"
  path=$SYNAPSE_TEST_CHROMIUM
elif ! path=$(find_browser); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "no chromium found; installing Debian's chromium package"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends --no-upgrade chromium >&2; then
      apt-get update -qq >&2 || true
      apt-get install -y -qq --no-install-recommends --no-upgrade chromium >&2 || die "apt-get install chromium failed"
    fi
    path=$(find_browser) || die "chromium is not on PATH after installing it"
  else
    die "no chromium on PATH; install it (Debian: apt-get install chromium) or set SYNAPSE_TEST_CHROMIUM"
  fi
fi
"$path" --headless --no-sandbox --disable-gpu --version >&2 || die "$path does not start"
echo "$path"
