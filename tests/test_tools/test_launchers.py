"""The thin launchers in tools/ run the stock MMSeg scripts of the installed package."""
import os.path as osp
import subprocess
import sys

import pytest

from ael_mmseg.testing.stock_tools import REPO_ROOT, STOCK_TOOLS


@pytest.mark.parametrize('script, flag', [('train.py', '--resume'), ('test.py', '--tta')])
def test_python_launchers_reach_the_stock_script(script, flag):
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', script), '--help'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert flag in proc.stdout  # an option only the stock mmseg script has


@pytest.mark.parametrize('script', ['dist_train.sh', 'slurm_train.sh'])
def test_shell_launchers_exec_an_existing_stock_script(script):
    launcher = open(osp.join(REPO_ROOT, 'tools', script)).read()
    assert f'exec bash "$MMSEG/tools/{script}"' in launcher
    assert osp.isfile(osp.join(STOCK_TOOLS, script))
