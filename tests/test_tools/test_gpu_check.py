"""tools/analysis_tools/gpu_check.py runs end to end (its CPU path, shrunk model)."""
import os
import subprocess
import sys

from helpers.paper_configs import save_standin_pretrained, small_model_options
from helpers.stock_tools import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, 'tools', 'analysis_tools', 'gpu_check.py')


def test_gpu_check_runs_the_paper_config_and_prints_the_tables(tmp_path):
    pretrained = str(tmp_path / 'standin.pth')
    save_standin_pretrained(pretrained)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--size', '64', '--steps', '2',
         '--repeats', '2', '--warmup', '1', '--threads', '1', '--cfg-options',
         *small_model_options(pretrained, prefix='model.segmentor.')],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    assert 'ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py' in out
    # the config's per-GPU batch: 2 labeled + 2 paste + 1 pair
    assert '2 labeled + 2 paste + 1 CutMix pair(s) at 64x64 on cpu' in out
    assert 'sync check NOT armed (needs CUDA)' in out
    import mmcv
    import mmseg
    import torch
    versions = next(line for line in out.splitlines() if line.startswith('[gpu_check] versions:'))
    for part in (f'torch {torch.__version__}', f'mmcv {mmcv.__version__}',
                 f'mmseg {mmseg.__version__}', 'CUDA ', 'cuDNN ', 'GPU none'):
        assert part in versions, (part, versions)
    assert 'losses of the last step finite' in out and 'unsup.loss_ael=' in out
    for row in ('| supervised |', '| mean-teacher |', '| ael |', '| student backward |',
                '| ACM (cutmix forward) |', '| ACP (copy_paste forward) |'):
        assert row in out, row


def test_gpu_check_refuses_amp_without_cuda(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, SCRIPT, '--device', 'cpu', '--amp'], cwd=str(tmp_path),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert '--amp needs CUDA' in proc.stdout and 'Traceback' not in proc.stdout
