#!/usr/bin/env bash
# The main job: set up, then train N-pair and HDML(N-pair) on the embedded glyphs and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=${MPLBACKEND:-Agg}
exec "${PYTHON:-python3}" -m hdml_lite demo "$@"
