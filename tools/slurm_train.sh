#!/usr/bin/env bash
# Thin launcher: the stock MMSeg slurm_train.sh from the installed package.
#   GPUS=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
set -euo pipefail
PYTHON=${PYTHON:-python}
MMSEG=$("$PYTHON" -c "import mmseg, os; print(os.path.dirname(mmseg.__file__))")/.mim
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bash "$MMSEG/tools/slurm_train.sh" "$@"
