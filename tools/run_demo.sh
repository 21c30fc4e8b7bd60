#!/usr/bin/env bash
# The main job: AEL on the synthetic long-tailed toy dataset, on the CPU, from
# scratch, through the stock MMSeg train script, next to a supervised-only run
# of the same length; then per-class IoU tables and plots.
#
#   bash tools/run_demo.sh                  # outputs in work_dirs/demo/
#   DEMO_ITERS=2400 bash tools/run_demo.sh  # another length (warm-up scales with it)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh
PY="${AEL_VENV:-$ROOT/.venv}/bin/python"
TRAIN=$("$PY" -c "import mmseg, os; print(os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools', 'train.py'))")
OUT=${DEMO_OUT:-work_dirs/demo}
DATA=data/longtail_toy
ITERS=${DEMO_ITERS:-}

if [ ! -f "$DATA/splits/val.txt" ]; then
    echo "[demo] generating the long-tailed toy dataset in $DATA"
    "$PY" tools/misc/generate_longtail_toy.py --out "$DATA"
fi
opts=()
if [ -n "$ITERS" ]; then  # a shorter/longer run: scale the schedule with it
    opts=(train_cfg.max_iters="$ITERS" param_scheduler.0.end="$ITERS"
          train_cfg.val_interval=$((ITERS / 2)) default_hooks.checkpoint.interval=$((ITERS / 2))
          model.semi_train_cfg.warmup_iters=$((ITERS / 2))
          model.semi_train_cfg.rampup_iters=$((ITERS / 8)))
fi
run() {  # label config
    echo "[demo] training $1 (${ITERS:-1600} iterations, CPU) -> $OUT/$1"
    { rc=0; "$PY" "$TRAIN" "$2" --work-dir "$OUT/$1" ${opts[@]:+--cfg-options "${opts[@]}"} 2>&1 || rc=$?
      echo "$rc" > "$OUT/$1.rc"; } | tee "$OUT/$1.log" |
        grep --line-buffered -E "Iter\(train\)|Iter\(val\) \[" || true
    [ "$(cat "$OUT/$1.rc")" -eq 0 ] || { echo "[demo] $1 failed, see $OUT/$1.log"; exit 1; }
}
mkdir -p "$OUT"
run ael configs/ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py
run supervised configs/ael_baselines/supervised_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py
echo
echo "[demo] per-class IoU (%) on the validation set, last validation:"
"$PY" tools/analysis_tools/ael_report.py ael="$OUT/ael" supervised="$OUT/supervised" \
    --plot-dir "$OUT/plots" | tee "$OUT/report.md"
echo "[demo] done. Outputs: $OUT/{ael,supervised}/ (logs, checkpoints, scalars), $OUT/report.md, $OUT/plots/"
