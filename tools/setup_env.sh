#!/usr/bin/env bash
# Creates (or refreshes) a project-local virtual environment with one of the two
# tested OpenMMLab stacks and installs ael_mmseg into it in editable mode.
# Idempotent: a second run with unchanged pins only checks the imports.
#
#   AEL_STACK  cpu (default): torch 2.13.0 CPU build, numpy 2 (Python >= 3.10)
#              gpu: the README's GPU stack at pyproject.toml's floors: torch 2.1.2
#              (PyPI's CUDA 12.1 build, which also runs without a GPU), numpy 1.24.4,
#              mmcv 2.1.0, mmengine 0.10.7, mmsegmentation 1.2.2 (Python 3.8-3.11;
#              .ci/run builds it with Python 3.8, the floor)
#   AEL_VENV   where the environment lives (default: <repo>/.venv for cpu,
#              <repo>/.venv-gpu-stack for gpu)
#   PYTHON     interpreter used to create it (default: python3)
#   MAX_JOBS   parallel compile jobs for mmcv's ops (default: 2)
#
# The stack's torch is installed over whatever torch the environment holds: to
# run on another torch/CUDA, build your environment by hand (README, "GPU
# clusters") instead of with this script.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${AEL_STACK:-cpu}
case "$STACK" in
    cpu) TORCH_PIN="torch==2.13.0"; NUMPY_PIN="numpy"; MM_PINS=""; DEFAULT_VENV="$ROOT/.venv" ;;
    gpu) TORCH_PIN="torch==2.1.2"; NUMPY_PIN="numpy==1.24.4"
         MM_PINS="mmengine==0.10.7 mmsegmentation==1.2.2"; DEFAULT_VENV="$ROOT/.venv-gpu-stack" ;;
    *) echo "[setup_env] AEL_STACK must be cpu or gpu, got '$STACK'" >&2; exit 2 ;;
esac
VENV=${AEL_VENV:-$DEFAULT_VENV}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
pip() { "$VPY" -m pip "$@"; }

stamp="$VENV/.ael_mmseg_env"
want=$( (echo "$STACK"; cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/tools/setup_env.sh") | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    "$VPY" -c "import mmcv.ops, mmseg.models, ael_mmseg" 2>/dev/null; then
    exit 0
fi

echo "[setup_env] preparing $VENV ($STACK stack; the first run builds mmcv's ops: ~15 min on 2 cores)"
pip install -q --upgrade pip
pip install -q "$TORCH_PIN" "$NUMPY_PIN"
if ! "$VPY" -c "import mmcv.ops" 2>/dev/null; then
    # mmcv 2.1.0 exists on PyPI only as source; its setup.py needs an old
    # setuptools and the installed torch (hence no build isolation). pip caches
    # a built wheel by its source archive, not by the torch it was compiled
    # against, so each stack keeps a wheel cache of its own: a shared cache
    # would hand one stack ops compiled for the other's torch.
    pip install -q "setuptools<70" wheel ninja psutil
    PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ael_mmseg/pip-$STACK" \
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
        "$VPY" -m pip install --no-build-isolation "mmcv==2.1.0"
fi
# torch 2.13 wants setuptools>=77; mmengine 0.10.7 needs pkg_resources (<82).
if [ "$STACK" = cpu ]; then pip install -q "setuptools>=77,<82"; else pip install -q "setuptools<82"; fi
# shellcheck disable=SC2086  # MM_PINS is a word list
pip install -q -e "$ROOT[tests]" "$NUMPY_PIN" $MM_PINS
"$VPY" -c "import mmcv.ops, mmseg.models, ael_mmseg"
echo "$want" > "$stamp"
echo "[setup_env] ready: $VENV"
