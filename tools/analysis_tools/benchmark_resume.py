"""Time from ``runner.train()`` on a resume to the first new training step.

mmengine's ``IterBasedTrainLoop`` restores the data position by loading every
batch of the trained iterations; ``SemiSegIterBasedTrainLoop`` starts the
keyed data stream at the resumed step by arithmetic (nothing drawn or loaded
for the trained steps). For each loop and each resume iteration this script saves a
checkpoint at that iteration (one real training step, then the iteration
counter set in the checkpoint), resumes it with the config's own data loader
(workers included) in a fresh process, and prints the seconds from
``runner.train()`` to the start of the first new step (checkpoint load, data
position, worker start, first batch). The step itself is not run.

Example::

    python tools/analysis_tools/benchmark_resume.py
    python tools/analysis_tools/benchmark_resume.py --iters 0 5000 16000 --repeats 3
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import ael_mmseg  # noqa: F401  (registers the plugin)
from ael_mmseg.datasets.longtail_toy import make_longtail_toy

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
LOOPS = ('IterBasedTrainLoop', 'SemiSegIterBasedTrainLoop')


class _FirstStep(Exception):
    """Raised at the first new step: the time is taken, the step is not needed."""


class _StopAtFirstStep(Hook):
    priority = 'HIGHEST'

    def __init__(self):
        self.reached = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.reached = time.perf_counter()
        raise _FirstStep


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=TOY_CONFIG)
    parser.add_argument('--data-root', default=None,
                        help='dataset root (default: the config\'s; the toy dataset is '
                        'generated into a temporary folder when it does not exist)')
    parser.add_argument('--iters', type=int, nargs='+', default=[0, 5000],
                        help='resume iterations to time')
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--measure', nargs=2, metavar=('LOOP', 'CHECKPOINT'),
                        help=argparse.SUPPRESS)  # one timing, in a child process
    return parser.parse_args()


def _config(path: str, data_root: str, work_dir: str, loop: str, max_iters: int) -> Config:
    cfg = Config.fromfile(path)
    for name in ('labeled', 'unlabeled'):
        cfg.train_dataloader.dataset[name].data_root = data_root
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader.dataset.data_root = data_root
    cfg.train_cfg.type = loop
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters + 1
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    return cfg


def _checkpoint_at(iteration: int, first: str, out: str) -> str:
    """``first`` (one trained step) with its counters set to ``iteration``."""
    checkpoint = torch.load(first, map_location='cpu', weights_only=False)
    checkpoint['meta']['iter'] = iteration
    path = osp.join(out, f'resume_at_{iteration}.pth')
    torch.save(checkpoint, path)
    return path


def _time_resume(cfg: Config, checkpoint: str) -> float:
    """Seconds from ``runner.train()`` to the first new step (run in a child process)."""
    cfg.load_from = checkpoint
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    stop = _StopAtFirstStep()
    runner.register_hook(stop)
    start = time.perf_counter()
    try:
        runner.train()
    except _FirstStep:
        pass
    if stop.reached is None:
        raise RuntimeError('training ended before its first step')
    return stop.reached - start


def _measure_in_child(args, loop: str, checkpoint: str) -> float:
    command = [sys.executable, osp.abspath(__file__), '--config', args.config, '--data-root',
               args.data_root, '--work-dir', args.work_dir, '--iters', *map(str, args.iters),
               '--measure', loop, checkpoint]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('RESUME_SECONDS ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'timing {loop} on {checkpoint} failed:\n{proc.stdout[-4000:]}')
    return float(lines[-1].split()[1])


def main() -> None:
    args = parse_args()
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix='benchmark_resume_')
    os.makedirs(args.work_dir, exist_ok=True)
    top = max(args.iters)
    if args.measure:
        loop, checkpoint = args.measure
        cfg = _config(args.config, args.data_root, osp.join(args.work_dir, loop), loop, top + 1)
        print(f'RESUME_SECONDS {_time_resume(cfg, checkpoint):.3f}')
        return
    if args.data_root is None:
        args.data_root = Config.fromfile(args.config).train_dataloader.dataset.labeled.data_root
    if not osp.isdir(args.data_root):
        args.data_root = osp.join(args.work_dir, 'longtail_toy')
        print(f'generating the toy dataset (tools/misc/generate_longtail_toy.py defaults) in '
              f'{args.data_root}')
        make_longtail_toy(args.data_root, num_labeled=20, num_unlabeled=400, num_val=100,
                          size=64, seed=0)

    # One real step gives a checkpoint with everything a resume loads.
    first_cfg = _config(args.config, args.data_root, osp.join(args.work_dir, 'first'), LOOPS[0],
                        1)
    Runner.from_cfg(first_cfg).train()
    first = osp.join(args.work_dir, 'first', 'iter_1.pth')
    checkpoints = {i: _checkpoint_at(i, first, args.work_dir) for i in args.iters}

    loader = first_cfg.train_dataloader
    print(f'config: {osp.relpath(args.config, REPO_ROOT)}; {loader.batch_size} labeled images '
          f'(+ paste sources, CutMix pairs) per step, num_workers={loader.num_workers}; '
          f'median of {args.repeats} fresh process(es)')
    print('seconds from runner.train() on --resume to the start of the first new step')
    print(f'{"loop":<32}' + ''.join(f'{"at iteration " + str(i):>20}' for i in args.iters))
    for loop in LOOPS:
        times = [statistics.median(_measure_in_child(args, loop, checkpoints[i])
                                   for _ in range(args.repeats)) for i in args.iters]
        print(f'{loop:<32}' + ''.join(f'{t:>20.2f}' for t in times), flush=True)


if __name__ == '__main__':
    main()
