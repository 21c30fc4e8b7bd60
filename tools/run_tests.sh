#!/usr/bin/env bash
# The test command: sets up the environment (idempotent), lints, runs every test.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k bank`.
#   AEL_STACK=gpu  runs on the README's GPU stack instead (torch 2.1.2, numpy < 2;
#                  its own environment, .venv-gpu-stack; see tools/setup_env.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/tools/setup_env.sh"
if [ "${AEL_STACK:-cpu}" = gpu ]; then DEFAULT_VENV="$ROOT/.venv-gpu-stack"; else DEFAULT_VENV="$ROOT/.venv"; fi
VENV=${AEL_VENV:-$DEFAULT_VENV}
cd "$ROOT"
"$VENV/bin/python" -m flake8 ael_mmseg tools tests configs
"$VENV/bin/python" -m isort --check-only --diff ael_mmseg tools tests
"$VENV/bin/python" -c "import torch, numpy; print(f'test stack: torch {torch.__version__}, numpy {numpy.__version__}')"
start=$(date +%s)
# pytest exits non-zero (5) when no test ran, so an empty run fails CI too.
"$VENV/bin/python" -m pytest -ra "$@"
echo "test suite wall time: $(( $(date +%s) - start )) s"
