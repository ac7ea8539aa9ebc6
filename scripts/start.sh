#!/usr/bin/env bash
# Set up and open JupyterLab on the quickstart notebook. With CI=true: run the notebook headless instead.
source "$(dirname "$0")/env.sh"
pip_install -e ".[lab]"
if [ "${CI:-}" = "true" ]; then
  out="$(mktemp -d)"
  cp notebooks/quickstart.ipynb "$out/"
  cd "$out"
  jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 quickstart.ipynb --output executed.ipynb
  echo "quickstart ran headless: $out/executed.ipynb"
  jupyter-mv log
else
  extra=()
  [ "$(id -u)" = 0 ] && extra+=(--allow-root)
  exec jupyter lab "${extra[@]}" notebooks/quickstart.ipynb
fi
