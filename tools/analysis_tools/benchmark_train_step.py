"""Time one training step of supervised, CutMix mean teacher and AEL, in one process.

The three models are built from one config (same seed, so the same weights)
and fed the same synthetic batch (N labeled + N paste + P CutMix pairs, random
images, long-tailed block labels, ``ael_role``/``sample_idx``/``acm_class``
metainfo). A step is ``model.train_step`` (data preprocessor, forward, losses,
backward, SGD step) followed by ``AELHook``'s per-step work (EMA update; for
AEL ``finish_step``, i.e. the Eq. 7 update and the presence write, and the
host-side ACM source state getting the rows written), on a stand-in runner.
The baselines are the classes their configs use (``CutMixMeanTeacher``, with
``unsup_weight=0`` for supervised training) around the config's segmentor;
their batch has no copy-paste sources.

Data wait is measured separately, with the config's real train data loader
(its dataset, SemiSegSampler with the adaptive ACM source choice installed,
pipelines and default ``num_workers``): AEL steps on real batches, timing
``next(loader)`` (the wait) against the whole step, after the workers warmed
up. It needs the config's dataset on disk (for the toy config it is generated
when missing); ``--data-steps 0`` skips it.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` per mode (reset before
the mode's model is built, minus what was allocated then: model, optimizer
state, activations). On the CPU, peak RSS (a psutil thread polling every
2 ms) minus the RSS before the mode's model is built, after ``malloc_trim``;
allocator caching makes it coarse.

The AEL breakdown is a second pass with timers wrapped around instance
methods (monkeypatched, project code untouched); on CUDA each timer
synchronises, so its parts add up to a slightly slower step.

    python tools/analysis_tools/benchmark_train_step.py --device cpu --repeats 10 --threads 1
    python tools/analysis_tools/benchmark_train_step.py --device cuda --size 769 \
        --num-labeled 2 --num-pairs 2 \
        --config configs/ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py
    python tools/analysis_tools/benchmark_train_step.py --device cuda --size 769 \
        --num-labeled 2 --num-pairs 2 --config \
        configs/ael/ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py
"""
import argparse
import ctypes
import gc
import os.path as osp
import statistics
import threading
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Callable, Dict, List, Tuple

import psutil
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import ael_mmseg  # noqa: F401 (registers the AEL modules)
from ael_mmseg.datasets import semi_sampler_of
from ael_mmseg.datasets.samplers import ACMSourceState
from ael_mmseg.engine.hooks import AELHook
from ael_mmseg.utils.keyed_random import CUTMIX_SOURCE, keyed_numpy

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs/ael/ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
# The model of each mode: the baselines as configs/ael_baselines/* build them.
MODES = {
    'supervised': dict(type='CutMixMeanTeacher', unsup_weight=0.0),
    'mean-teacher': dict(type='CutMixMeanTeacher'),
    'ael': None,
}
START_ITER = 1000  # past any warm-up; the EMA decay is then the configured momentum


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark one AEL training step')
    parser.add_argument('--config', default=TOY, help='AEL config (model and optim_wrapper)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, default=64, help='square crop size')
    parser.add_argument('--num-labeled', type=int, default=4, help='N labeled (and N paste)')
    parser.add_argument('--num-pairs', type=int, default=2, help='P CutMix pairs')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--data-steps', type=int, default=32,
                        help='AEL steps on the real data loader to measure data wait (0: skip)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: AmpOptimWrapper (autocast + dynamic loss scale), '
                        'as the stock train.py --amp')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, as in train.py')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (0: torch default); on a loaded host use '
                        'fewer than the free cores, oversubscription swamps the timings')
    return parser.parse_args()


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def make_batch(args: argparse.Namespace, num_classes: int) -> Tuple[List, List]:
    """Synthetic batch like the test's fake batch, labels long-tailed in 8x8 blocks."""
    g = torch.Generator().manual_seed(0)
    n, p, size = args.num_labeled, args.num_pairs, args.size
    roles = ['sup'] * n + ['sup_paste'] * n + ['unsup'] * p + ['unsup_source'] * p
    tail = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float) ** 2
    inputs, samples = [], []
    for i, role in enumerate(roles):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g).float()
                      .to(args.device))
        acm_class = -1
        if role == 'unsup_source':  # a tail class, as ACM would draw
            acm_class = int(torch.randint(num_classes // 2, num_classes, (1, ), generator=g))
        sample = SegDataSample()
        sample.set_metainfo(dict(
            ael_role=role, sample_idx=i - 2 * n if role.startswith('unsup') else i,
            acm_class=acm_class, img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size)))
        if role.startswith('sup'):
            blocks = torch.multinomial(tail, 64, replacement=True, generator=g)
            label = F.interpolate(blocks.view(1, 1, 8, 8).float(), size=(size, size),
                                  mode='nearest').long()[0]
            sample.gt_sem_seg = PixelData(data=label.to(args.device))
        samples.append(sample)
    return inputs, samples


def load_config(args: argparse.Namespace) -> Config:
    """The config with ``--cfg-options`` and ``--amp`` applied (as the stock train.py does)."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(getattr(args, 'cfg_options', None) or {})
    if getattr(args, 'amp', False):
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def model_cfg(cfg: Config, mode: str) -> dict:
    """The model of ``mode``: the config's AEL model, or a baseline around its segmentor."""
    ael = cfg.model
    if MODES[mode] is None:
        return ael
    baseline = dict(MODES[mode])
    unsup_weight = baseline.pop('unsup_weight', None)
    semi_train_cfg = dict(ael.semi_train_cfg)
    if unsup_weight is not None:
        semi_train_cfg['unsup_weight'] = unsup_weight
    return dict(baseline, segmentor=ael.segmentor, data_preprocessor=ael.data_preprocessor,
                semi_train_cfg=semi_train_cfg, semi_test_cfg=ael.get('semi_test_cfg'))


def build(args: argparse.Namespace, mode: str) -> SimpleNamespace:
    """Model, optimizer wrapper, the per-step hooks and a stand-in runner for one mode."""
    cfg = load_config(args)
    cfg.merge_from_dict({'model.data_preprocessor.size': (args.size, args.size),
                         'model.semi_train_cfg.warmup_iters': 0,
                         'model.semi_train_cfg.rampup_iters': 0})
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(cfg, mode)).to(args.device)
    model.train()
    model.copy_student_to_teacher()  # AELHook.before_train
    hook = AELHook(log_interval=10**9)
    if getattr(model, 'uses_acm', False):  # what its before_train sets up
        model.cutmix.resize_presence(2 * args.num_pairs)
        hook.acm_state = ACMSourceState(8, model.confidence_bank.confidence,
                                        model.cutmix.presence, START_ITER)
    hooks = [hook]
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return SimpleNamespace(model=model, optim_wrapper=optim_wrapper,
                           runner=SimpleNamespace(model=model, iter=START_ITER), hooks=hooks,
                           copy_paste=getattr(model, 'copy_paste', None) is not None)


def step(env: SimpleNamespace, batch: Tuple[List, List], device: str) -> float:
    """One training step plus the hooks' work; returns its wall time in seconds."""
    inputs, samples = batch
    if not env.copy_paste:  # the baselines' batches have no copy-paste sources
        keep = [i for i, s in enumerate(samples) if s.metainfo['ael_role'] != 'sup_paste']
        inputs, samples = [inputs[i] for i in keep], [samples[i] for i in keep]
    data = dict(inputs=list(inputs), data_samples=[s.clone() for s in samples])
    MessageHub.get_current_instance().update_info('iter', env.runner.iter)
    sync(device)
    start = time.perf_counter()
    env.model.train_step(data, env.optim_wrapper)
    for hook in env.hooks:
        hook.after_train_iter(env.runner, 0)
    sync(device)
    env.runner.iter += 1
    return time.perf_counter() - start


class PeakRSS:
    """Peak resident set size seen by a polling thread, relative to entry."""

    def __enter__(self) -> 'PeakRSS':
        self._proc = psutil.Process()
        self.base = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn: Callable, name: str, times: Dict[str, float], device: str) -> Callable:
    def wrapper(*args, **kwargs):
        sync(device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        sync(device)
        times[name] += time.perf_counter() - start
        return out
    return wrapper


def install_timers(env: SimpleNamespace, times: Dict[str, float], device: str) -> None:
    model, student = env.model, env.model.student
    aux = student.auxiliary_head if student.with_auxiliary_head else []
    aux = aux if isinstance(aux, (list, torch.nn.ModuleList)) else [aux]
    targets = [('teacher forward (pseudo_labels)', model, 'pseudo_labels'),
               ('student forward', student, 'extract_feat'),
               ('student forward', student.decode_head, 'forward'),
               ('student backward', env.optim_wrapper, 'backward'),
               ('SGD step', env.optim_wrapper, 'step'),
               ('bank statistics', model.confidence_bank, 'batch_statistics'),
               ('presence table', model, '_record_presence'),
               ('ACM (cutmix forward)', model.cutmix, 'forward'),
               ('ACP (copy_paste forward)', getattr(model, 'copy_paste', None), 'forward'),
               ('loss', student.decode_head, 'loss_by_feat'),
               ('loss', model, 'unsup_losses'),
               ('data preprocessor', model.data_preprocessor, 'forward'),
               ('EMA update (hook)', model, 'update_teacher'),
               ('bank update + presence write (hook)', model, 'finish_step'),
               ('host copies for ACM (hook)', env.hooks[0].acm_state, 'push')]
    for head in aux:
        targets += [('student forward', head, 'forward'), ('loss', head, 'loss_by_feat')]
    for name, obj, attr in targets:
        if obj is not None:
            setattr(obj, attr, timed(getattr(obj, attr), name, times, device))


def median_ms(values: List[float]) -> float:
    return 1e3 * statistics.median(values)


def build_mode(args: argparse.Namespace, mode: str, batch: Tuple[List, List]) -> dict:
    """Build one mode, warm it up and measure its peak memory (model, optimizer, step)."""
    gc.collect()
    if args.device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        try:  # hand freed heap back to the OS
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except (OSError, AttributeError):
            pass
    with PeakRSS() as rss:
        env = build(args, mode)
        for _ in range(args.warmup):
            step(env, batch, args.device)
    if args.device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = rss.peak - rss.base
    return dict(env=env, peak_mib=peak / 2**20)


def time_modes(args: argparse.Namespace, results: Dict[str, dict],
               batch: Tuple[List, List]) -> None:
    """Median step time per mode, steps interleaved so all modes share the host's load."""
    times: Dict[str, List[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for mode, res in results.items():
            times[mode].append(step(res['env'], batch, args.device))
    for mode, res in results.items():
        res['step'] = median_ms(times[mode])


def breakdown(args: argparse.Namespace, env: SimpleNamespace, batch: Tuple[List, List]) -> dict:
    """The AEL step again, with timers around its parts."""
    parts: Dict[str, float] = defaultdict(float)
    install_timers(env, parts, args.device)
    per_step = []
    for _ in range(args.repeats):
        parts.clear()
        total = step(env, batch, args.device)
        per_step.append(dict(parts, other=total - sum(parts.values()), total=total))
    names = sorted({k for s in per_step for k in s} - {'total', 'other'}) + ['other']
    return dict(parts={k: median_ms([s.get(k, 0.0) for s in per_step]) for k in names},
                wrapped_step=median_ms([s['total'] for s in per_step]))


def data_wait(args: argparse.Namespace) -> dict:
    """Median data wait and step time of AEL on the config's real train data loader."""
    from mmengine.runner import Runner
    cfg = load_config(args)
    loader_cfg = cfg.train_dataloader
    toy_root = osp.join(REPO, 'data/longtail_toy')
    if loader_cfg.dataset.labeled.data_root == 'data/longtail_toy' and \
            not osp.isfile(osp.join(toy_root, 'splits/val.txt')):
        from ael_mmseg.datasets.longtail_toy import make_longtail_toy
        make_longtail_toy(toy_root)
    for side in ('labeled', 'unlabeled'):
        root = loader_cfg.dataset[side].data_root
        if not osp.isabs(root):
            loader_cfg.dataset[side].data_root = osp.join(REPO, root)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    sampler = semi_sampler_of(loader)
    crop = tuple(cfg.model.data_preprocessor.size)
    env = build(argparse.Namespace(**dict(vars(args), size=crop[0])), 'ael')
    env.model.cutmix.resize_presence(len(loader.dataset.unlabeled))
    hook = env.hooks[0]
    hook.acm_state = ACMSourceState(sampler.acm_lag, env.model.confidence_bank.confidence,
                                    env.model.cutmix.presence, env.runner.iter)
    sampler.acm_state = hook.acm_state  # what AELHook.before_train installs
    start = time.perf_counter()
    for i in range(1000):  # one keyed generator and one choice per pair, as the sampler
        hook.acm_state.sample_source(env.runner.iter, keyed_numpy(0, CUTMIX_SOURCE, 0, 0, i))
    select_us = (time.perf_counter() - start) * 1e3
    iterator = iter(loader)
    waits, steps = [], []
    for i in range(args.warmup + args.data_steps):
        MessageHub.get_current_instance().update_info('iter', env.runner.iter)
        start = time.perf_counter()
        data = next(iterator)
        got = time.perf_counter()
        env.model.train_step(data, env.optim_wrapper)
        for h in env.hooks:
            h.after_train_iter(env.runner, 0)
        sync(args.device)
        env.runner.iter += 1
        if i >= args.warmup:
            waits.append(got - start)
            steps.append(time.perf_counter() - start)
    # Means, not medians: with W workers the wait comes in bursts, one step in W.
    return dict(wait=1e3 * statistics.mean(waits), step=1e3 * statistics.mean(steps),
                share=100 * sum(waits) / sum(steps), select_us=select_us,
                workers=loader_cfg.get('num_workers', 0), batch=sampler.batch_size)


def main() -> None:
    args = parse_args()
    if args.amp and args.device != 'cuda':
        raise SystemExit("--amp needs CUDA (mmengine's AmpOptimWrapper refuses the CPU)")
    run(args)


def run(args: argparse.Namespace) -> None:
    """Build the three modes, time them, print the tables (and the data wait)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    num_classes = load_config(args).model.segmentor.decode_head.num_classes
    batch = make_batch(args, num_classes)
    results = {mode: build_mode(args, mode, batch) for mode in MODES}
    time_modes(args, results, batch)
    sup, mt, ael = (results[m] for m in MODES)
    ael.update(breakdown(args, ael['env'], batch))
    device = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'cpu ({torch.get_num_threads()} threads)'
    memory = 'CUDA max_memory_allocated' if args.device == 'cuda' else 'peak RSS delta'
    print(f'\n{osp.basename(args.config)} on {device}, torch {torch.__version__}; batch '
          f'{args.num_labeled} labeled + {args.num_labeled} paste + {args.num_pairs} pairs '
          f'at {args.size}x{args.size}{", AMP" if args.amp else ""}; median of {args.repeats} '
          f'steps per mode after {args.warmup} warm-up, modes interleaved step by step; data '
          'loading not included\n')
    print(f'| mode | step (ms) | peak memory, {memory} (MiB) |\n|---|---:|---:|')
    for mode, res in results.items():
        print(f"| {mode} | {res['step']:.1f} | {res['peak_mib']:.1f} |")
    time_ratio, mem_ratio = ael['step'] / mt['step'], ael['peak_mib'] / max(mt['peak_mib'], 1e-9)
    print(f"\n| ratio | value | goal |\n|---|---:|---|\n"
          f"| AEL / mean-teacher step time | {time_ratio:.3f} | <= 1.05 "
          f"({'met' if time_ratio <= 1.05 else 'NOT met'}) |\n"
          f"| mean-teacher / supervised step time | {mt['step'] / sup['step']:.3f} | - |\n"
          f"| AEL / mean-teacher peak memory | {mem_ratio:.3f} | <= 1.05 "
          f"({'met' if mem_ratio <= 1.05 else 'NOT met'}) |")
    print(f"\nAEL breakdown (timed pass, median step {ael['wrapped_step']:.1f} ms):\n\n"
          '| part | median (ms) | share of step |\n|---|---:|---:|')
    for name, value in sorted(ael['parts'].items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {value:.2f} | {100 * value / ael['wrapped_step']:.1f} % |")
    if args.data_steps > 0:
        data = data_wait(args)
        print(f"\nData wait with the real train loader ({data['workers']} workers, batch "
              f"{data['batch']}, {args.data_steps} AEL steps after {args.warmup}):\n\n"
              '| quantity | value |\n|---|---:|\n'
              f"| mean data wait (ms) | {data['wait']:.1f} |\n"
              f"| mean step incl. wait (ms) | {data['step']:.1f} |\n"
              f"| data wait share of step time | {data['share']:.1f} % (goal < 5 %: "
              f"{'met' if data['share'] < 5 else 'NOT met'}) |\n"
              f"| ACM source choice on the host, in the sampler (us per pair) | "
              f"{data['select_us']:.1f} |")


if __name__ == '__main__':
    main()
