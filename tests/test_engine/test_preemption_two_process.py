"""Two processes (gloo, CPU): a pre-emption signal that reaches one rank stops both, once.

Rank 1 sends itself SIGUSR1 after its second step; rank 0 never receives a
signal. The hook is made to see an NCCL default group, so the agreement runs on
the gloo group it makes for itself, as on GPUs. With ``sync_interval=2`` the
ranks agree at the start of iterations 0, 2, 4, ...: both must finish the third
step, write one checkpoint (``iter_3.pth``, with AELHook's ``ael_state``),
and exit with 75; neither may hang in a collective.
"""
import argparse
import glob
import os
import os.path as osp
import signal
from types import SimpleNamespace

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ael_mmseg.engine.hooks import PreemptionCheckpointHook, preemption_checkpoint_hook
from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.processes import run_ranks
from helpers.stock_tools import TOY_CONFIG, tiny_toy_options

WORLD_SIZE = 2
MAX_ITERS = 8


class _SignalRankOne(Hook):
    """Rank 1 signals itself after its second step; every rank records what it trained.

    With ``signal_rank_one=False`` it only records (an uninterrupted or a resumed run).
    """

    def __init__(self, record, signal_rank_one=True):
        self.record = record
        self.signal_rank_one = signal_rank_one

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.record['trained'].append(runner.iter + 1)
        self.record.setdefault('losses', {})[runner.iter + 1] = {
            key: float(value) for key, value in (outputs or {}).items() if 'loss' in key}
        if self.signal_rank_one and torch_dist.get_rank() == 1 and runner.iter + 1 == 2:
            os.kill(os.getpid(), signal.SIGUSR1)

    def after_run(self, runner):  # runs before the pre-emption hook's exit (LOWEST)
        hook = next(h for h in runner.hooks if isinstance(h, PreemptionCheckpointHook))
        self.record['received'] = hook.received
        self.record['own_group'] = hook._group is not None
        torch.save(self.record, osp.join(runner.work_dir,
                                         f'record_rank{torch_dist.get_rank()}.pth'))


def _train(rank, port, toy_root, work_dir, mode='signal'):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', rank=rank, world_size=WORLD_SIZE)
    # In this child only: the hook sees an NCCL default group, as on GPUs, and so
    # makes and uses its own gloo group for the agreement.
    preemption_checkpoint_hook.torch_dist = SimpleNamespace(
        get_backend=lambda group=None: 'nccl', new_group=torch_dist.new_group)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', *tiny_toy_options(
        toy_root, max_iters=MAX_ITERS, val_interval=100),
        'default_hooks.preemption.sync_interval=2']).cfg_options
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(options)
    cfg.launcher = 'pytorch'
    cfg.work_dir = work_dir
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)  # CPU: no device_ids
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.resume = mode == 'resume'
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_SignalRankOne(dict(trained=[]), signal_rank_one=mode == 'signal'),
                         priority='VERY_LOW')
    runner.train()  # raises SystemExit(75) after a pre-emption


def test_a_signal_on_one_rank_stops_both_after_the_same_step_with_one_checkpoint(
        tmp_path, toy_root):
    work_dir = str(tmp_path / 'work')
    os.makedirs(work_dir)
    assert run_ranks(_train, WORLD_SIZE, toy_root, work_dir) == [75, 75]

    records = [torch.load(osp.join(work_dir, f'record_rank{r}.pth'), weights_only=False)
               for r in range(WORLD_SIZE)]
    assert records[0]['own_group'] and records[1]['own_group']
    assert records[0]['received'] is None  # rank 0 got no signal ...
    assert records[1]['received'] == signal.SIGUSR1
    # ... and both stopped after the step that followed the next agreement (iteration 2).
    assert records[0]['trained'] == records[1]['trained'] == [1, 2, 3]
    saved = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')))
    assert [osp.basename(p) for p in saved] == ['iter_3.pth']
    checkpoint = load_checkpoint_file(saved[0])
    assert checkpoint['meta']['iter'] == 3
    # AELHook's state: the key seed and the ACM lag's history up to the saved step.
    acm = checkpoint['ael_state']['acm_source']
    assert isinstance(checkpoint['ael_state']['key_seed'], int)
    assert acm['base_step'] + len(acm['steps']) == 3


def test_two_ranks_resumed_after_a_signal_repeat_every_later_loss(tmp_path, toy_root):
    straight, signalled = str(tmp_path / 'straight'), str(tmp_path / 'signalled')
    os.makedirs(straight)
    os.makedirs(signalled)
    assert run_ranks(_train, WORLD_SIZE, toy_root, straight, 'straight') == [0, 0]
    assert run_ranks(_train, WORLD_SIZE, toy_root, signalled, 'signal') == [75, 75]
    assert run_ranks(_train, WORLD_SIZE, toy_root, signalled, 'resume') == [0, 0]
    for rank in range(WORLD_SIZE):
        reference = torch.load(osp.join(straight, f'record_rank{rank}.pth'),
                               weights_only=False)['losses']
        resumed = torch.load(osp.join(signalled, f'record_rank{rank}.pth'),
                             weights_only=False)['losses']
        assert sorted(resumed) == list(range(4, MAX_ITERS + 1)), rank
        for step, losses in resumed.items():
            assert losses and losses.keys() == reference[step].keys(), (rank, step)
            for key, value in losses.items():
                assert abs(value - reference[step][key]) <= 1e-6, (rank, step, key)
    # The ranks trained on their own draws: their losses differ.
    rank0 = torch.load(osp.join(straight, 'record_rank0.pth'), weights_only=False)['losses']
    rank1 = torch.load(osp.join(straight, 'record_rank1.pth'), weights_only=False)['losses']
    assert rank0[MAX_ITERS] != rank1[MAX_ITERS]
