"""tools/analysis_tools/gpu_check.py runs an original-network config (CPU path, shrunk model)."""
import os
import subprocess
import sys

from helpers.paper_configs import save_standin_pretrained, small_model_options
from helpers.stock_tools import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, 'tools', 'analysis_tools', 'gpu_check.py')
CONFIG = os.path.join(REPO_ROOT, 'configs', 'ael',
                      'ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py')


def test_gpu_check_runs_the_original_network_config(tmp_path):
    pretrained = str(tmp_path / 'standin.pth')
    save_standin_pretrained(pretrained)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--config', CONFIG, '--device', 'cpu', '--size', '65',
         '--steps', '1', '--repeats', '1', '--warmup', '0', '--threads', '1', '--cfg-options',
         *small_model_options(pretrained, prefix='model.segmentor.')],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    assert os.path.basename(CONFIG) in out
    assert '2 labeled + 2 paste + 1 CutMix pair(s) at 65x65 on cpu' in out
    assert 'losses of the last step finite' in out and 'unsup.loss_ael=' in out
    for row in ('| supervised |', '| mean-teacher |', '| ael |'):
        assert row in out, row
