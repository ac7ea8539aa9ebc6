#!/usr/bin/env bash
# Set up everything the tests need and run all of them (unit, real kernel, notebooks under nbval).
# Usage: scripts/test.sh [extra pytest args]
source "$(dirname "$0")/env.sh"
pip_install -e ".[test]"
set -o pipefail
exec python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
