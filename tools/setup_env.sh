#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment with the pinned
# OpenMMLab stack and installs ael_mmseg into it in editable mode. Idempotent:
# a second run with unchanged pins only checks the imports.
#
#   AEL_VENV   where the environment lives (default: <repo>/.venv)
#   PYTHON     interpreter used to create it (default: python3)
#   MAX_JOBS   parallel compile jobs for mmcv's ops (default: 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${AEL_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
pip() { "$VPY" -m pip "$@"; }

stamp="$VENV/.ael_mmseg_env"
want=$(cat "$ROOT/pyproject.toml" "$ROOT/tools/setup_env.sh" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    "$VPY" -c "import mmcv.ops, mmseg.models, ael_mmseg" 2>/dev/null; then
    exit 0
fi

echo "[setup_env] preparing $VENV (first run builds mmcv's ops: ~15 min on 2 cores)"
pip install -q --upgrade pip
# The CPU build of torch; on a GPU machine install the torch matching your CUDA
# first (README, "GPU clusters") and this line keeps it.
pip install -q "torch==2.13.0"
if ! "$VPY" -c "import mmcv.ops" 2>/dev/null; then
    # mmcv 2.1.0 exists on PyPI only as source; its setup.py needs an old
    # setuptools and the installed torch (hence no build isolation). pip caches
    # the built wheel, so later environments on the same machine are quick.
    pip install -q "setuptools<70" wheel ninja psutil numpy
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
        "$VPY" -m pip install --no-build-isolation "mmcv==2.1.0"
fi
# torch 2.13 wants setuptools>=77; mmengine 0.10.7 needs pkg_resources (<82).
pip install -q "setuptools>=77,<82"
pip install -q -e "$ROOT[tests]"
"$VPY" -c "import mmcv.ops, mmseg.models, ael_mmseg" 
echo "$want" > "$stamp"
echo "[setup_env] ready: $VENV"
