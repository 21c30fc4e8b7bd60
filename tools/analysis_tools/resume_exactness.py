"""How far a resumed run's losses are from the uninterrupted run's, per loop and worker count.

For each number of data-loader workers and each train loop (mmengine's
``IterBasedTrainLoop``, which replays the trained batches, and
``SemiSegIterBasedTrainLoop``, which starts the keyed data stream at the
resumed step) this trains the config
with the stock ``train.py`` three times: straight to ``--iters``, to
``--stop``, and ``--resume`` from there to ``--iters``. It prints how many of
the resumed iterations repeat the straight run's total loss to 1e-6 and the
mean and largest absolute difference, next to the straight run's own mean
step-to-step change of the loss for scale. AEL's warm-up is switched off so
that every part (ACM included) is active from the first step.

Example::

    python tools/analysis_tools/resume_exactness.py --data-root data/longtail_toy
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

import mmseg

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
TRAIN = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
LOOPS = ('IterBasedTrainLoop', 'SemiSegIterBasedTrainLoop')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=TOY_CONFIG)
    parser.add_argument('--data-root', required=True, help='the toy dataset root '
                        '(tools/misc/generate_longtail_toy.py)')
    parser.add_argument('--stop', type=int, default=20, help='iteration of the checkpoint')
    parser.add_argument('--iters', type=int, default=40, help='iterations in all')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    parser.add_argument('--work-dir', default=None)
    args = parser.parse_args()
    if not 0 < args.stop < args.iters:
        parser.error(f'need 0 < --stop < --iters, got {args.stop} and {args.iters}')
    return args


def _train(args, work_dir: str, options, resume: bool = False) -> None:
    command = [sys.executable, TRAIN, args.config, '--work-dir', work_dir,
               *(['--resume'] if resume else []), '--cfg-options', *options]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p))
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} exited {proc.returncode}:\n'
                           f'{proc.stdout[-4000:]}')


def _losses(work_dir: str) -> dict:
    """{iteration: total loss} of the newest run in ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    records = [json.loads(line) for line in open(files[-1]) if line.strip()]
    return {r['step']: r['loss'] for r in records if 'loss' in r}


def main() -> None:
    args = parse_args()
    root = args.work_dir or tempfile.mkdtemp(prefix='resume_exactness_')
    print(f'{osp.relpath(args.config, REPO_ROOT)}: checkpoint at {args.stop}, resumed to '
          f'{args.iters}; total loss of the resumed iterations against the uninterrupted run')
    print(f'{"workers":>7}  {"loop":<30} {"equal to 1e-6":>14} {"mean |diff|":>12} '
          f'{"max |diff|":>11} {"mean |step change|":>19}')
    for workers in args.workers:
        for loop in LOOPS:
            options = [
                *(f'train_dataloader.dataset.{part}.data_root={args.data_root}'
                  for part in ('labeled', 'unlabeled')),
                f'val_dataloader.dataset.data_root={args.data_root}',
                f'test_dataloader.dataset.data_root={args.data_root}',
                f'train_cfg.type={loop}', f'train_cfg.val_interval={args.iters + 1}',
                f'param_scheduler.0.end={args.iters}',
                'model.semi_train_cfg.warmup_iters=0', 'model.semi_train_cfg.rampup_iters=0',
                f'train_dataloader.num_workers={workers}',
                f'train_dataloader.persistent_workers={workers > 0}',
                f'default_hooks.checkpoint.interval={args.stop}',
                'default_hooks.logger.interval=1', 'log_processor.window_size=1',
                'randomness.deterministic=True']
            base = osp.join(root, f'workers{workers}', loop)
            _train(args, osp.join(base, 'straight'),
                   [*options, f'train_cfg.max_iters={args.iters}'])
            resumed = osp.join(base, 'resumed')
            _train(args, resumed, [*options, f'train_cfg.max_iters={args.stop}'])
            _train(args, resumed, [*options, f'train_cfg.max_iters={args.iters}'], resume=True)
            straight, after = _losses(osp.join(base, 'straight')), _losses(resumed)
            steps = range(args.stop + 1, args.iters + 1)
            diffs = [abs(after[s] - straight[s]) for s in steps]
            change = [abs(straight[s] - straight[s - 1]) for s in steps]
            equal = sum(d <= 1e-6 for d in diffs)
            print(f'{workers:>7}  {loop:<30} {f"{equal}/{len(diffs)}":>14} '
                  f'{sum(diffs) / len(diffs):>12.4f} {max(diffs):>11.4f} '
                  f'{sum(change) / len(change):>19.4f}', flush=True)


if __name__ == '__main__':
    main()
