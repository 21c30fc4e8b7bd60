"""GPU check of a paper config in a few minutes on one GPU.

    python tools/analysis_tools/gpu_check.py          # Cityscapes 1/16: R101, 769x769
    python tools/analysis_tools/gpu_check.py --amp    # the same with train.py's --amp
    python tools/analysis_tools/gpu_check.py --config \\
        configs/ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_32-513x513.py
    python tools/analysis_tools/gpu_check.py --config \\
        configs/ael/ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py

What it runs, on the shipped config at its full crop (only the schedule is
short; the model is built without loading the ImageNet weights, which a check
does not need and an offline machine cannot download):

1. **Sync-free AEL step.** ``--steps`` training steps on a batch of the
   config's per-GPU shape (labeled crops, copy-paste sources and CutMix pairs
   at the crop size, synthetic long-tailed labels), each with
   ``torch.cuda.set_sync_debug_mode('error')`` around the AEL part: the data
   preprocessor, both forwards, ACP, ACM, the bank statistics and every loss,
   then the hooks' EMA, bank and presence updates. Any host-device
   synchronisation there raises and names the line. Backward and the
   optimizer step run outside the check (with ``--amp`` the GradScaler reads
   its inf flag on the host by design). Prints the losses of the last step.
2. **Speed and memory.** ``benchmark_train_step.py`` at the same size:
   supervised / CutMix mean teacher / AEL step times, peak
   ``max_memory_allocated`` per mode, and the AEL step part by part.

On a machine without CUDA it runs both parts on the CPU (``--device cpu``),
where the sync check cannot be armed; it says so. That is how the test suite
exercises this script (with a shrunk model via ``--cfg-options``).
"""
import argparse
import importlib.util
import os.path as osp
import time
from contextlib import contextmanager

import torch
from mmengine.config import DictAction
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

import ael_mmseg  # noqa: F401 (registers the AEL modules)

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
DEFAULT = osp.join(REPO, 'configs', 'ael',
                   'ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py')


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        'benchmark_train_step', osp.join(HERE, 'benchmark_train_step.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='GPU check of an AEL paper config')
    parser.add_argument('--config', default=DEFAULT)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        choices=['cpu', 'cuda'])
    parser.add_argument('--amp', action='store_true', help='AmpOptimWrapper, as train.py --amp')
    parser.add_argument('--size', type=int, default=0, help='crop (default: the config\'s)')
    parser.add_argument('--steps', type=int, default=5, help='sync-checked training steps')
    parser.add_argument('--repeats', type=int, default=10, help='timed steps per mode')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--threads', type=int, default=0)
    return parser.parse_args()


@contextmanager
def sync_debug(device: str):
    """Raise on any host-device synchronisation inside (CUDA only)."""
    if device != 'cuda':
        yield
        return
    torch.cuda.set_sync_debug_mode('error')
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode('default')


def checked_step(env, batch, device: str) -> dict:
    """One training step; the AEL part (forward, losses, hooks) under the sync check."""
    model, wrapper = env.model, env.optim_wrapper
    inputs, samples = batch
    data = dict(inputs=list(inputs), data_samples=[s.clone() for s in samples])
    MessageHub.get_current_instance().update_info('iter', env.runner.iter)
    with wrapper.optim_context(model):
        with sync_debug(device):
            data = model.data_preprocessor(data, True)
            losses = model._run_forward(data, mode='loss')
            parsed, log_vars = model.parse_losses(losses)
    wrapper.update_params(parsed)
    with sync_debug(device):
        for hook in env.hooks:
            hook.after_train_iter(env.runner, 0)
    env.runner.iter += 1
    return log_vars


def stack_versions(device: str) -> str:
    """The versions a report is compared by: torch, CUDA, cuDNN, mmcv, mmengine, mmseg, GPU."""
    import mmcv
    import mmengine
    import mmseg
    import numpy
    cuda = torch.version.cuda or 'none (CPU build)'
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    gpu = (torch.cuda.get_device_name() if device == 'cuda' and torch.cuda.is_available()
           else 'none')
    return (f'torch {torch.__version__}, CUDA {cuda}, cuDNN {cudnn or "none"}, '
            f'numpy {numpy.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
            f'mmseg {mmseg.__version__}, ael_mmseg {ael_mmseg.__version__}, GPU {gpu}')


def main() -> None:
    args = parse_args()
    print(f'[gpu_check] versions: {stack_versions(args.device)}')
    if args.amp and args.device != 'cuda':
        raise SystemExit("[gpu_check] --amp needs CUDA (mmengine's AmpOptimWrapper refuses the "
                         'CPU); drop --amp or run on a GPU')
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    bench = load_benchmark()
    cfg = bench.load_config(args)
    sampler = cfg.train_dataloader.sampler
    num_labeled = cfg.train_dataloader.batch_size  # labeled crops per GPU and step
    size = args.size or int(cfg.model.data_preprocessor.size[0])
    bench_args = argparse.Namespace(
        config=args.config, device=args.device, size=size, num_labeled=num_labeled,
        num_pairs=sampler.num_unlabeled, warmup=args.warmup, repeats=args.repeats,
        data_steps=0, amp=args.amp, cfg_options=args.cfg_options, threads=0)
    num_classes = cfg.model.segmentor.decode_head.num_classes
    batch = bench.make_batch(bench_args, num_classes)
    env = bench.build(bench_args, 'ael')
    armed = args.device == 'cuda'
    print(f'[gpu_check] {osp.basename(args.config)}: {num_labeled} labeled + '
          f'{num_labeled} paste + {sampler.num_unlabeled} CutMix pair(s) at '
          f'{size}x{size} on {args.device}{" with AMP" if args.amp else ""}; sync check '
          + ('armed (torch.cuda.set_sync_debug_mode("error"))' if armed else
             'NOT armed (needs CUDA)'))
    start = time.perf_counter()
    for _ in range(args.steps):
        log_vars = checked_step(env, batch, args.device)
    values = {k: float(v) for k, v in log_vars.items()}
    finite = all(v == v and abs(v) != float('inf') for v in values.values())
    print(f'[gpu_check] {args.steps} steps in {time.perf_counter() - start:.1f} s, '
          f'{"no host-device sync in the AEL part" if armed else "not sync-checked"}; '
          f'losses of the last step {"finite" if finite else "NOT finite"}: ' +
          ', '.join(f'{k}={v:.4f}' for k, v in values.items()))
    if args.device == 'cuda':
        print(f'[gpu_check] peak memory so far: '
              f'{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')
    del env
    bench.run(bench_args)
    if not finite:
        raise SystemExit('[gpu_check] non-finite losses')


if __name__ == '__main__':
    main()
