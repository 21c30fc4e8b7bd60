#!/usr/bin/env bash
# Slurm training that survives pre-emption and time limits: the job is requeued and resumes.
#
# From a login node (submits a batch job):
#   GPUS=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# which runs
#   sbatch -p PARTITION --job-name=JOB_NAME --ntasks=GPUS --ntasks-per-node=GPUS_PER_NODE \
#       --gres=gpu:GPUS_PER_NODE --cpus-per-task=CPUS_PER_TASK --requeue \
#       --signal=B:USR1@SIGNAL_LEAD --open-mode=append --output=OUTPUT [SBATCH_ARGS] \
#       tools/slurm_train.sh CONFIG [train.py options]
# Inside a job (SLURM_JOB_ID is set; sbatch runs it so, or call it in an salloc):
#   bash tools/slurm_train.sh CONFIG [train.py options]
# runs the stock train.py on every task with `--launcher slurm --resume` (continue the
# work dir's latest checkpoint, if any), forwards SIGUSR1/SIGTERM to it, and when the
# training exits with PREEMPT_EXIT_CODE (PreemptionCheckpointHook: checkpoint written
# after a signal) requeues the job with `scontrol requeue`. Any other status is returned.
#
# Environment: GPUS (8), GPUS_PER_NODE (min(GPUS, 8)), CPUS_PER_TASK (5), SIGNAL_LEAD
# (seconds, 120), OUTPUT (slurm-%x-%j.out), SBATCH_ARGS, SRUN_ARGS, PYTHON (python),
# PREEMPT_EXIT_CODE (75).
set -euo pipefail
PYTHON=${PYTHON:-python}
PREEMPT_EXIT_CODE=${PREEMPT_EXIT_CODE:-75}

if [ -z "${SLURM_JOB_ID:-}" ]; then
    if [ $# -lt 3 ]; then
        echo "usage: GPUS=8 bash $0 PARTITION JOB_NAME CONFIG [train.py options]" >&2
        exit 2
    fi
    PARTITION=$1
    JOB_NAME=$2
    shift 2
    GPUS=${GPUS:-8}
    GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
    CPUS_PER_TASK=${CPUS_PER_TASK:-5}
    SIGNAL_LEAD=${SIGNAL_LEAD:-120}
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    # shellcheck disable=SC2086
    exec sbatch -p "$PARTITION" --job-name="$JOB_NAME" --ntasks="$GPUS" \
        --ntasks-per-node="$GPUS_PER_NODE" --gres=gpu:"$GPUS_PER_NODE" \
        --cpus-per-task="$CPUS_PER_TASK" --requeue --signal=B:USR1@"$SIGNAL_LEAD" \
        --open-mode=append --output="${OUTPUT:-slurm-%x-%j.out}" ${SBATCH_ARGS:-} \
        "$(pwd)/tools/slurm_train.sh" "$@"
fi

if [ $# -lt 1 ]; then
    echo "usage (inside a Slurm job): bash $0 CONFIG [train.py options]" >&2
    exit 2
fi
MMSEG=$("$PYTHON" -c "import mmseg, os; print(os.path.dirname(mmseg.__file__))")/.mim
echo "slurm_train.sh: job ${SLURM_JOB_ID}, start ${SLURM_RESTART_COUNT:-0}" >&2
# shellcheck disable=SC2086
srun --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$PYTHON" -u "$MMSEG/tools/train.py" "$@" \
    --launcher=slurm --resume &
STEP=$!
# Slurm signals this batch shell only (--signal=B:...); srun passes the signal on to
# every task, where PreemptionCheckpointHook saves and exits with PREEMPT_EXIT_CODE.
trap 'kill -s USR1 "$STEP" 2>/dev/null || true' USR1
trap 'kill -s TERM "$STEP" 2>/dev/null || true' TERM
while :; do
    status=0
    wait "$STEP" || status=$?
    # A trapped signal interrupts `wait` with a status > 128 while the step runs on.
    if [ "$status" -gt 128 ] && kill -0 "$STEP" 2>/dev/null; then
        continue
    fi
    if [ "$status" -gt 128 ]; then  # ended right after the interruption: its own status
        s=0
        wait "$STEP" 2>/dev/null || s=$?
        [ "$s" -eq 127 ] || status=$s  # 127: already reaped, keep the status we have
    fi
    break
done
if [ "$status" -eq "$PREEMPT_EXIT_CODE" ]; then
    echo "slurm_train.sh: checkpoint saved after a pre-emption signal; requeueing job" \
         "${SLURM_JOB_ID} (it resumes from the work dir's latest checkpoint)" >&2
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
exit "$status"
