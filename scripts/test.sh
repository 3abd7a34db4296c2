#!/usr/bin/env bash
# The test command: set up, then run the default test suite (notebooks included, in fast mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export MPLBACKEND=Agg HDML_FAST=1
exec "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider "$@"
