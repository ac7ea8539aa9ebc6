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
set -o pipefail
exec python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
