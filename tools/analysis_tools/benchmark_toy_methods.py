"""Supervised-only vs CutMix mean teacher vs AEL (and ablations) on the toy dataset.

Trains every method for every seed through the stock MMSeg train script on the
CPU, reads the last validation of each run, and prints a markdown table of
mIoU and tail-class mIoU (mean ± std over seeds, teacher and student) and the
wall time per run.

    python tools/analysis_tools/benchmark_toy_methods.py                 # 3 seeds, 1600 it.
    python tools/analysis_tools/benchmark_toy_methods.py --ablations     # + one-part ablations
    python tools/analysis_tools/benchmark_toy_methods.py --iters 800     # another length
    python tools/analysis_tools/benchmark_toy_methods.py --jobs 2        # 2 runs at a time

With ``--jobs N`` each run gets ``cpu_count // N`` threads; the wall times are
then those of runs sharing the machine.

The methods are the README main job's configs (UNet, supervised warm-up for
the first half); ``--iters`` scales the warm-up and ramp-up with the schedule.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import mmseg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
AEL = 'configs/ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py'
MT = 'configs/ael_baselines/cutmix-mt_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py'
SUP = 'configs/ael_baselines/supervised_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py'
TAIL = ('red_disc', 'thin_pole', 'dotted_triangle', 'brown_ring')
METHODS = {'supervised': (SUP, []), 'cutmix-mt': (MT, []), 'ael': (AEL, [])}
# CutMix mean teacher plus one AEL part (the paper's ablation table): the AEL config
# with the other three parts switched off, as configs/ael_ablations/ do.
NO_ACP = ['train_dataloader.dataset.paste_pipeline=None']  # no copy-paste sources in the batch
NO_ACM = ['model.cutmix._delete_=True', 'model.cutmix.type=CutMix']  # random CutMix boxes
NO_DR = ['model.unsup_loss.use_dynamic_reweighting=False']
NO_AES = ['model.unsup_loss.use_equalization_sampling=False']
ABLATIONS = {
    'mt+dr': (AEL, NO_ACP + NO_ACM + NO_AES),
    'mt+aes': (AEL, NO_ACP + NO_ACM + NO_DR),
    'mt+acm': (AEL, NO_ACP + NO_DR + NO_AES),
    'mt+acp': (AEL, NO_ACM + NO_DR + NO_AES),
}


def run(name: str, config: str, options: List[str], seed: int, iters: Optional[int],
        out: str, threads: Optional[int] = None) -> dict:
    work_dir = osp.join(out, f'{name}_seed{seed}')
    train = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    opts = [f'randomness.seed={seed}', *options]
    if iters:  # the same proportions as the config: half warm-up, 1/8 ramp-up
        opts += [f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={iters}',
                 f'train_cfg.val_interval={iters // 2}',
                 f'default_hooks.checkpoint.interval={iters // 2}',
                 f'model.semi_train_cfg.warmup_iters={iters // 2}',
                 f'model.semi_train_cfg.rampup_iters={iters // 8}']
    env = dict(os.environ, **({'OMP_NUM_THREADS': str(threads)} if threads else {}))
    start = time.time()
    with open(work_dir + '.log', 'w') as log:
        proc = subprocess.run([sys.executable, train, osp.join(REPO, config), '--work-dir',
                               work_dir, '--cfg-options', *opts], cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        raise RuntimeError(f'{name} seed {seed} failed; see {work_dir}.log')
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    records = [json.loads(line) for line in open(scalars)]
    last = [r for r in records if 'teacher/mIoU' in r][-1]
    return dict(last, wall=time.time() - start)


def fmt(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=None,
                        help='schedule length (default: the configs\' 1600)')
    parser.add_argument('--ablations', action='store_true')
    parser.add_argument('--only', nargs='+', metavar='METHOD',
                        help=f'run only these of {sorted(METHODS) + sorted(ABLATIONS)}')
    parser.add_argument('--append', action='store_true',
                        help='add to the results.json of --out (e.g. ablations after the '
                        'main methods) and print the table of everything in it')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time, each with cpu_count // jobs threads')
    parser.add_argument('--out', default='work_dirs/benchmark_toy')
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    if not osp.isfile(osp.join(REPO, 'data/longtail_toy/splits/val.txt')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/generate_longtail_toy.py'),
                        '--out', osp.join(REPO, 'data/longtail_toy')], check=True)
    os.makedirs(args.out, exist_ok=True)
    methods = dict(METHODS, **(ABLATIONS if args.ablations else {}))
    if args.only:
        unknown = sorted(set(args.only) - set(METHODS) - set(ABLATIONS))
        if unknown:
            parser.error(f'unknown method(s) {unknown}; valid: '
                         f'{sorted(METHODS) + sorted(ABLATIONS)}')
        methods = {name: {**METHODS, **ABLATIONS}[name] for name in args.only}
    results: Dict[str, List[dict]] = {}
    saved = osp.join(args.out, 'results.json')
    if args.append and osp.isfile(saved):
        with open(saved) as f:
            results = json.load(f)
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def one(job):
        seed, name = job
        config, options = methods[name]
        print(f'[benchmark] {name} seed {seed} ...\n', end='', flush=True)  # one write per line
        return run(name, config, options, seed, args.iters, args.out, threads)

    jobs = [(seed, name) for seed in args.seeds for name in methods]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # map keeps the order of `jobs`, so each method's runs stay in seed order.
        for (seed, name), result in zip(jobs, pool.map(one, jobs)):
            results.setdefault(name, []).append(result)
            with open(osp.join(args.out, 'results.json'), 'w') as f:  # partial results
                json.dump(results, f, indent=1)
    print(f'\n{args.iters or 1600} iterations, seeds {args.seeds}, CPU '
          f'({os.cpu_count()} cores, {args.jobs} run(s) at a time); mean ± std over seeds\n')
    print('| method | teacher mIoU | teacher tail mIoU | student mIoU | student tail mIoU '
          '| wall time per run (s) |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, runs in results.items():
        cells = [fmt([r[f'{m}/{k}'] for r in runs]) for m in ('teacher', 'student')
                 for k in ('mIoU', 'mIoU.tail')]
        print(f'| {name} | ' + ' | '.join(cells) + f' | {fmt([r["wall"] for r in runs])} |')
    print(f'\nTeacher IoU per tail class (mean ± std over seeds): {", ".join(TAIL)}\n')
    print('| method | ' + ' | '.join(TAIL) + ' |')
    print('|---|' + '---:|' * len(TAIL))
    for name, runs in results.items():
        cells = [fmt([r.get(f'teacher/IoU.{c}', float('nan')) for r in runs]) for c in TAIL]
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
