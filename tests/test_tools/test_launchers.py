"""The launchers in tools/: the stock MMSeg scripts, and the requeueing Slurm script."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers.stock_tools import REPO_ROOT, STOCK_TOOLS

SLURM_TRAIN = osp.join(REPO_ROOT, 'tools', 'slurm_train.sh')


@pytest.mark.parametrize('script, flag', [('train.py', '--resume'), ('test.py', '--tta')])
def test_python_launchers_reach_the_stock_script(script, flag):
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', script), '--help'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert flag in proc.stdout  # an option only the stock mmseg script has


def test_dist_launcher_execs_an_existing_stock_script():
    launcher = open(osp.join(REPO_ROOT, 'tools', 'dist_train.sh')).read()
    assert 'exec bash "$MMSEG/tools/dist_train.sh"' in launcher
    assert osp.isfile(osp.join(STOCK_TOOLS, 'dist_train.sh'))


# Stand-ins for the Slurm commands: each records its arguments, one per line.
RECORD = 'printf "%s\\n" "$@" > "$RECORDS/$(basename "$0").args"\n'
FAKE_SRUN = """\
case "$FAKE_TRAIN" in
  preempt)  # a training that saves and exits 75 when the signal reaches it
    trap 'echo USR1 > "$RECORDS/srun.signal"; exit 75' USR1
    trap 'echo TERM > "$RECORDS/srun.signal"; exit 75' TERM
    touch "$RECORDS/srun.ready"
    while :; do sleep 0.05; done ;;
  done) exit 0 ;;
  crash) exit 1 ;;
esac
"""


@pytest.fixture
def slurm(tmp_path):
    """A PATH with stand-in sbatch / srun / scontrol and the folder they record into."""
    bin_dir, records = tmp_path / 'bin', tmp_path / 'records'
    bin_dir.mkdir()
    records.mkdir()
    for name, body in (('sbatch', ''), ('scontrol', ''), ('srun', FAKE_SRUN)):
        path = bin_dir / name
        path.write_text('#!/usr/bin/env bash\n' + RECORD + textwrap.dedent(body))
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}', RECORDS=str(records),
               PYTHON=sys.executable)
    return env, records


def _args(records, name):
    path = records / f'{name}.args'
    return path.read_text().splitlines() if path.exists() else None


def test_slurm_script_submits_a_requeueable_job_with_a_signal_lead(slurm):
    env, records = slurm
    env.update(GPUS='16', SBATCH_ARGS='--time=24:00:00')
    proc = subprocess.run(['bash', SLURM_TRAIN, 'gpu', 'ael-c32', 'configs/x.py', '--amp'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = _args(records, 'sbatch')
    assert args[:2] == ['-p', 'gpu']
    for option in ('--job-name=ael-c32', '--ntasks=16', '--ntasks-per-node=8', '--gres=gpu:8',
                   '--requeue', '--signal=B:USR1@120', '--open-mode=append',
                   '--time=24:00:00'):
        assert option in args, option
    # The batch script is this script again, with the training arguments.
    assert args[-3:] == [SLURM_TRAIN, 'configs/x.py', '--amp']
    assert _args(records, 'srun') is None


def test_slurm_script_without_a_config_says_how_to_call_it(slurm):
    env, _ = slurm
    proc = subprocess.run(['bash', SLURM_TRAIN, 'gpu'], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert 'usage: GPUS=8 bash' in proc.stderr and 'PARTITION JOB_NAME CONFIG' in proc.stderr


def _run_in_job(env, records, mode, send=None):
    env = dict(env, SLURM_JOB_ID='4242', FAKE_TRAIN=mode)
    proc = subprocess.Popen(['bash', SLURM_TRAIN, 'configs/x.py', '--work-dir', 'w'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if send is not None:
        deadline = time.monotonic() + 60
        while not (records / 'srun.ready').exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        proc.send_signal(send)  # what --signal=B:USR1@120 does: the batch shell only
    output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


@pytest.mark.parametrize('sig', [signal.SIGUSR1, signal.SIGTERM])
def test_slurm_job_forwards_the_signal_and_requeues_after_the_checkpoint(slurm, sig):
    env, records = slurm
    code, output = _run_in_job(env, records, 'preempt', send=sig)
    assert code == 0, output
    assert (records / 'srun.signal').read_text().strip() == sig.name[3:]
    assert _args(records, 'scontrol') == ['requeue', '4242']
    assert 'requeueing job 4242' in output
    srun = _args(records, 'srun')
    assert srun[0] == '--kill-on-bad-exit=1'
    assert srun[1:] == [sys.executable, '-u', osp.join(STOCK_TOOLS, 'train.py'), 'configs/x.py',
                        '--work-dir', 'w', '--launcher=slurm', '--resume']


@pytest.mark.parametrize('mode, status', [('done', 0), ('crash', 1)])
def test_slurm_job_does_not_requeue_a_finished_or_crashed_run(slurm, mode, status):
    env, records = slurm
    code, output = _run_in_job(env, records, mode)
    assert code == status, output
    assert _args(records, 'scontrol') is None
    assert _args(records, 'srun') is not None
