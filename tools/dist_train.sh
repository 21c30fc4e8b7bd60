#!/usr/bin/env bash
# Thin launcher: the stock MMSeg dist_train.sh from the installed package.
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
set -euo pipefail
PYTHON=${PYTHON:-python}
MMSEG=$("$PYTHON" -c "import mmseg, os; print(os.path.dirname(mmseg.__file__))")/.mim
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bash "$MMSEG/tools/dist_train.sh" "$@"
