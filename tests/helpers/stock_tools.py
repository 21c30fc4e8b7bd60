"""Run the stock MMSeg tools (shipped in the installed package) from tests."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

import mmseg

STOCK_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')


def tiny_toy_options(data_root: str, max_iters: int = 4, val_interval: int = 2,
                     batch: Tuple[int, int] = (2, 1), size: int = 64) -> List[str]:
    """``--cfg-options`` that shrink a toy config to seconds on the CPU.

    ``batch`` is (labeled images, CutMix pairs) per step; the config's
    ``paste_pipeline`` adds as many copy-paste sources as labeled images.
    """
    num_labeled, num_unlabeled = batch
    return [
        f'train_dataloader.batch_size={num_labeled}',
        f'train_dataloader.dataset.labeled.data_root={data_root}',
        f'train_dataloader.dataset.unlabeled.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'model.data_preprocessor.size=[{size},{size}]',
        f'train_dataloader.sampler.num_unlabeled={num_unlabeled}',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={val_interval}',
        f'param_scheduler.0.end={max_iters}',
        'model.semi_train_cfg.warmup_iters=0', 'model.semi_train_cfg.rampup_iters=0',
        f'default_hooks.checkpoint.interval={val_interval}',
        'default_hooks.logger.interval=1',
        'custom_hooks.0.log_interval=1',  # AELHook
    ]


def stock_tool_env() -> Dict[str, str]:
    """The environment of a stock-tool subprocess: one thread, this checkout importable."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    return env


def run_stock_tool(script: str, args: Sequence[str], cwd: str, timeout: int = 900) -> str:
    """Run ``mmseg/.mim/tools/<script>`` in a fresh interpreter.

    Raises:
        AssertionError: with the tail of its output when it exits non-zero.
    """
    env = stock_tool_env()
    proc = subprocess.run([sys.executable, osp.join(STOCK_TOOLS, script), *args], cwd=cwd,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    output = proc.stdout
    if proc.returncode != 0:
        raise AssertionError(f'{script} {" ".join(args)} exited {proc.returncode}\n'
                             f'{output[-8000:]}')
    return output


def logged_losses(work_dir: str, keys: Sequence[str]) -> Dict[int, Dict[str, float]]:
    """Per-iteration ``keys`` of the newest run's scalar log in ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalar log in {work_dir}'
    records = [json.loads(line) for line in open(files[-1]) if line.strip()]
    return {r['step']: {k: r[k] for k in keys} for r in records if 'loss' in r}


def train_until_signalled(args: Sequence[str], cwd: str, after_iteration: int, sig: int,
                          to_group: bool = False) -> Tuple[int, str]:
    """Start the stock train script, send ``sig`` once it logged ``after_iteration``.

    Returns the exit code and the whole output.

    ``to_group``: to the whole process group (the loader's workers too), as a
    terminal's Ctrl-C or a cluster that signals every process of a job does.
    """
    env = stock_tool_env()
    proc = subprocess.Popen([sys.executable, osp.join(STOCK_TOOLS, 'train.py'), *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=to_group)
    # mmengine pads the iteration to the width of max_iters: '[ 7/12]'
    logged = re.compile(rf'Iter\(train\) \[ *{after_iteration}/')
    lines, deadline = [], time.monotonic() + 600
    for line in proc.stdout:
        lines.append(line)
        if logged.search(line):
            if to_group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, 'no training progress'
    lines.extend(proc.stdout)
    return proc.wait(timeout=600), ''.join(lines)
