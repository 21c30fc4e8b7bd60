#!/usr/bin/env bash
# The test command: sets up .venv (idempotent), lints, runs every test.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k bank`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/tools/setup_env.sh"
VENV=${AEL_VENV:-$ROOT/.venv}
cd "$ROOT"
"$VENV/bin/python" -m flake8 ael_mmseg tools tests configs
"$VENV/bin/python" -m isort --check-only --diff ael_mmseg tools tests
start=$(date +%s)
# pytest exits non-zero (5) when no test ran, so an empty run fails CI too.
"$VENV/bin/python" -m pytest -ra "$@"
echo "test suite wall time: $(( $(date +%s) - start )) s"
