"""Two processes (gloo, CPU) train AEL through mmengine's Runner and the plugin's pipeline.

After every step both ranks must hold the same confidence bank, ACM presence
table and teacher, while each rank trained on its own labeled and unlabeled
images.
"""
import argparse
import hashlib
import os
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ael_mmseg.testing.stock_tools import TOY_CONFIG, tiny_toy_options

WORLD_SIZE = 2
STEPS = 4


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _digest(tensors):
    sha = hashlib.sha1()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class _Probe(Hook):
    """Records, after every step, what each rank holds and which images it trained on."""

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        self.records.append(dict(
            bank=model.confidence_bank.confidence.clone(),
            bank_state=_digest(model.confidence_bank.buffers()),
            presence=model.cutmix.presence.clone(),
            teacher=_digest(model.teacher.state_dict().values()),
            student=_digest(p for p in model.student.parameters()),
            images=[(s.ael_role, osp.basename(s.img_path)) for s in data_batch['data_samples']]))


def _train(rank, port, toy_root, work_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    # mmengine's own init_dist for launcher='pytorch' needs CUDA; a process
    # group made beforehand is used as is.
    torch_dist.init_process_group('gloo', rank=rank, world_size=WORLD_SIZE)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', *tiny_toy_options(
        toy_root, max_iters=STEPS, val_interval=STEPS)]).cfg_options
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(options)
    cfg.launcher = 'pytorch'
    cfg.work_dir = work_dir
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)  # CPU: no device_ids
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe, priority='LOWEST')
    runner.train()
    torch.save(probe.records, osp.join(work_dir, f'probe_rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_two_ranks_agree_on_bank_presence_and_teacher_but_see_other_images(
        tmp_path, toy_root):
    work_dir = str(tmp_path / 'work')
    os.makedirs(work_dir)
    # fork: the workers inherit this module (pytest imports it by path only).
    ctx = mp.get_context('fork')
    port = _free_port()
    procs = [ctx.Process(target=_train, args=(rank, port, toy_root, work_dir))
             for rank in range(WORLD_SIZE)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=600)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            pytest.fail('a training process hung')
    assert [proc.exitcode for proc in procs] == [0, 0]

    rank0, rank1 = (torch.load(osp.join(work_dir, f'probe_rank{r}.pth'), weights_only=False)
                    for r in range(WORLD_SIZE))
    assert len(rank0) == len(rank1) == STEPS
    for step, (a, b) in enumerate(zip(rank0, rank1), 1):
        assert torch.equal(a['bank'], b['bank']), step
        assert a['bank_state'] == b['bank_state'], step
        assert torch.equal(a['presence'], b['presence']), step
        assert a['teacher'] == b['teacher'], step
        assert a['student'] == b['student'], step
        for role in ('sup', 'unsup'):
            seen0 = {name for r, name in a['images'] if r == role}
            seen1 = {name for r, name in b['images'] if r == role}
            assert seen0 and seen1 and not seen0 & seen1, (step, role, seen0, seen1)
    # Both ranks' unlabeled images reached the shared presence table, and the
    # bank moved away from its initial state.
    assert rank0[0]['bank_state'] != rank0[-1]['bank_state']
    rows_written = rank0[-1]['presence'].any(0).sum()
    assert rows_written > 0
