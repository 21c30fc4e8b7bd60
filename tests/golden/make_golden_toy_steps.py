"""Write the golden record of 4 seeded AEL toy training steps.

The record pins what the training step computes today, so that a refactor can
be checked against it (``tests/test_models/test_golden_toy_steps.py``). Per
step it holds the logged losses, the confidence bank, the ACM presence table
and the sums of the absolute student and teacher parameters.

The steps run at model level, in one process, on the CPU with one thread and
with the CPU kernels held at AVX2 (``PINNED_KERNEL_ENV``; the script re-starts
itself with it when it is not set): oneDNN, ATen and MKL choose their kernels
by the instruction set of the CPU, and AVX-512 kernels round differently from
AVX2 ones. Rounding alone moves step 2's loss by 7e-4 (4.546417 with oneDNN's
AVX-512 kernels, 4.549460 with its AVX2 ones, torch 2.13 on one AMD EPYC CPU),
past the record's tolerance; with the kernels held, any x86-64 CPU with AVX2
computes the record's values. The
toy config's model (at 32x32, warm-up and ramp-up off so that every part of
AEL runs from the first step) and its optimizer wrapper, ``model.train_step``
on a synthetic batch (2 labeled + 2 copy-paste + 2 CutMix pairs, seeded per
step), then ``after_train_iter`` of the config's custom hooks (teacher EMA,
confidence bank and presence table, finite-loss check) on a stand-in runner,
as ``tools/analysis_tools/benchmark_train_step.py`` does. The torch random
generator is re-seeded before each step, so a change in one step's use of
random numbers does not shift the later steps' draws. The decode heads'
``nn.Dropout2d`` layers draw their masks with ``torch.rand``
(``VersionStableDropout2d``): torch 2.1 and 2.13 draw different dropout masks
from the same seed (and take a different number of values from the
generator), while ``torch.rand`` gives the same stream in both, so the record
holds on both tested stacks.

Regenerate only when a change of the step's values is intended, and say why
in the commit message::

    python tests/golden/make_golden_toy_steps.py

``--out FILE`` writes the records of a run to FILE instead (what the test
compares with the record).
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.priority import get_priority
from mmengine.structures import PixelData
from mmseg.registry import HOOKS, MODELS
from mmseg.structures import SegDataSample

import ael_mmseg  # noqa: F401 (registers the AEL modules)

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
CONFIG = 'configs/ael/ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py'
RECORD = osp.join(HERE, 'golden_toy_steps.json')
SEED = 0
NUM_STEPS = 4
SIZE = 32
NUM_LABELED = 2
NUM_PAIRS = 2
NUM_UNLABELED = 8  # images in the presence table
SOURCE_CLASSES = (7, 9)  # ACM class of each pair's source (tail classes)
# Read by torch, oneDNN and MKL when they load, so set before the process starts.
PINNED_KERNEL_ENV = {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2',
                     'MKL_CBWR': 'AVX2'}


def kernels_pinned() -> bool:
    return all(os.environ.get(k) == v for k, v in PINNED_KERNEL_ENV.items())


def check_pinned_kernels() -> None:
    """Refuse to compute the record with other kernels than the record's."""
    if not kernels_pinned():
        raise RuntimeError(f'the golden steps need the environment {PINNED_KERNEL_ENV} '
                           'from the start of the process; run this script, which sets it')
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != 'AVX2':
        raise RuntimeError(f'the golden steps need AVX2 kernels; torch runs {capability} '
                           f'on this {platform.machine()} CPU, whose values differ')


def make_batch(step: int, num_classes: int) -> dict:
    """Raw batch of one step: images in [0, 255], long-tailed labels in 4x4 blocks."""
    g = torch.Generator().manual_seed(1000 + step)
    roles = ['sup'] * NUM_LABELED + ['sup_paste'] * NUM_LABELED + \
        ['unsup'] * NUM_PAIRS + ['unsup_source'] * NUM_PAIRS
    tail = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float)**1.5
    inputs, samples = [], []
    unlabeled = 0
    for role in roles:
        inputs.append(torch.randint(0, 256, (3, SIZE, SIZE), generator=g).float())
        meta = dict(ael_role=role, img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                    pad_shape=(SIZE, SIZE), acm_class=-1)
        if role.startswith('unsup'):
            meta['sample_idx'] = (2 * NUM_PAIRS * step + unlabeled) % NUM_UNLABELED
            if role == 'unsup_source':
                meta['acm_class'] = SOURCE_CLASSES[unlabeled % NUM_PAIRS]
            unlabeled += 1
        sample = SegDataSample()
        sample.set_metainfo(meta)
        if role.startswith('sup'):
            blocks = torch.multinomial(tail, 64, replacement=True, generator=g)
            label = F.interpolate(blocks.view(1, 1, 8, 8).float(), size=(SIZE, SIZE),
                                  mode='nearest').long()[0]
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class VersionStableDropout2d(torch.nn.Module):
    """``nn.Dropout2d`` whose channel mask comes from ``torch.rand``.

    The same distribution: each channel is zeroed with probability ``p``, the
    others are scaled by ``1 / (1 - p)``.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape[:2] + (1, ) * (x.dim() - 2), device=x.device) >= self.p
        return x * keep / (1 - self.p)


def use_version_stable_dropout(model: torch.nn.Module) -> int:
    """Swap every ``nn.Dropout2d`` for :class:`VersionStableDropout2d`; refuse other dropouts."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is torch.nn.Dropout2d:
                setattr(module, name, VersionStableDropout2d(child.p))
                swapped += 1
            elif isinstance(child, torch.nn.modules.dropout._DropoutNd):
                raise TypeError(f'{name}: {type(child).__name__} draws a torch-version-'
                                'dependent mask; give it a version-stable stand-in here')
    return swapped


def abs_sum(module: torch.nn.Module) -> float:
    return float(sum(p.detach().double().abs().sum() for p in module.parameters()))


def run_steps(num_steps: int = NUM_STEPS) -> list:
    """Run the seeded steps and return one record per step (plain Python values)."""
    check_pinned_kernels()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_steps(num_steps)
    finally:
        torch.set_num_threads(threads)


def _run_steps(num_steps: int) -> list:
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    cfg.model.semi_train_cfg.update(warmup_iters=0, rampup_iters=0)
    torch.manual_seed(SEED)
    model = MODELS.build(cfg.model)
    model.init_weights()  # as the runner does: the teacher starts as the student's copy
    assert use_version_stable_dropout(model) > 0
    model.cutmix.resize_presence(NUM_UNLABELED)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    hooks = sorted((HOOKS.build(h) for h in cfg.custom_hooks),
                   key=lambda h: get_priority(h.priority))
    message_hub = MessageHub.get_current_instance()
    runner = SimpleNamespace(model=model, iter=0, hooks=hooks, message_hub=message_hub)
    num_classes = model.num_classes
    records = []
    for step in range(num_steps):
        runner.iter = step
        message_hub.update_info('iter', step)
        torch.manual_seed(SEED + step)
        data = make_batch(step, num_classes)
        log_vars = model.train_step(data, optim_wrapper)
        for hook in hooks:
            hook.after_train_iter(runner, step, data, log_vars)
        presence = model.cutmix.presence.cpu()
        records.append(dict(
            iter=step,
            losses={k: float(torch.as_tensor(v).detach()) for k, v in sorted(log_vars.items())},
            confidence=[float(c) for c in model.confidence_bank.confidence],
            presence=[''.join('1' if x else '0' for x in row) for row in presence.tolist()],
            student_abs_sum=abs_sum(model.student),
            teacher_abs_sum=abs_sum(model.teacher)))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='write the records here instead of the golden record')
    args = parser.parse_args()
    if not kernels_pinned():
        env = {**os.environ, **PINNED_KERNEL_ENV}
        os.execve(sys.executable, [sys.executable, osp.abspath(__file__)] + sys.argv[1:], env)
    records = run_steps()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(records, f)
        return
    record = dict(
        about='AEL toy steps pinned for refactors; written by '
        'tests/golden/make_golden_toy_steps.py (see its docstring)',
        config=CONFIG, size=SIZE, seed=SEED, torch=torch.__version__,
        machine=platform.machine(), kernel_env=PINNED_KERNEL_ENV, steps=records)
    with open(RECORD, 'w') as f:
        json.dump(record, f, indent=1)
        f.write('\n')
    print(f'wrote {len(records)} steps to {osp.relpath(RECORD, REPO)}')
    for rec in records:
        print(rec['iter'], {k: round(v, 6) for k, v in rec['losses'].items()})


if __name__ == '__main__':
    main()
