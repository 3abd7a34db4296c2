#!/usr/bin/env bash
# Install hdml_lite and its dependencies into the current Python when anything is missing.
# Usage: bash scripts/setup.sh [extra]   (extra: "lab" also installs JupyterLab and the widgets,
# "test" the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRA=${1:-}
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "hdml_lite needs Python >= 3.10"' || {
  echo "error: hdml_lite needs Python >= 3.10 (found $("$PY" --version 2>&1))" >&2; exit 1; }
MODS="hdml_lite torch torchvision numpy sklearn matplotlib openTSNE tqdm PIL scipy fontTools threadpoolctl"
[ "$EXTRA" = "lab" ] && MODS="$MODS jupyterlab ipywidgets IPython"
[ "$EXTRA" = "test" ] && MODS="$MODS pytest pytorch_metric_learning faiss nbclient nbformat ipykernel jupyter_client ipywidgets IPython"
REPO=$(pwd)
if (cd /tmp && "$PY" - "$MODS" "$REPO" <<'PYEOF' 2>/dev/null)
import importlib, pathlib, sys
for m in sys.argv[1].split():
    importlib.import_module(m)
import hdml_lite
# the installed hdml_lite must be this checkout (editable install)
assert pathlib.Path(hdml_lite.__file__).resolve().parent == (pathlib.Path(sys.argv[2]) / "hdml_lite").resolve()
PYEOF
then
  echo "setup: dependencies present"
else
  echo "setup: installing hdml_lite${EXTRA:+[$EXTRA]} and its dependencies (first run only)"
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".${EXTRA:+[$EXTRA]}"
fi
