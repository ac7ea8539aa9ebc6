#!/usr/bin/env bash
# Set up everything the tests need and run all of them (unit, real kernel, notebooks under nbval).
# Usage: scripts/test.sh [extra pytest args]
source "$(dirname "$0")/env.sh"
# browser tests (tests/browser) drive Debian's chromium through Playwright; never `playwright install`
if [ "${JUPYTER_MV_NO_BROWSER:-0}" != 1 ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || echo "warning: no chromium: the browser tests will be skipped" >&2
fi
pip_install -e ".[test]"
set -o pipefail
exec python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
