"""Two processes (gloo, CPU) train AEL through mmengine's Runner and the plugin's pipeline.

After every step both ranks must hold the same confidence bank, ACM presence
table and teacher, while each rank trained on its own labeled and unlabeled
images and, with ``randomness.diff_rank_seed`` as the paper configs ship it,
drew its own ACP classes and CutMix boxes from identical starting weights.
Runs with ``TORCH_DISTRIBUTED_DEBUG=DETAIL`` (collectives checked for
agreement across ranks).
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from helpers.processes import run_ranks
from helpers.stock_tools import TOY_CONFIG, tiny_toy_options

WORLD_SIZE = 2
STEPS = 4


def _digest(tensors):
    sha = hashlib.sha1()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class _Probe(Hook):
    """Records, after every step, what each rank holds and which images it trained on.

    Also the weights at the start, and the random draws of the AEL parts (the
    ACP class sets and the random CutMix boxes, which depend only on the
    random stream and the bank, not on the images).
    """

    def __init__(self):
        self.records = []
        self.start = None
        self.draws = []

    def before_train(self, runner):
        model = runner.model.module
        self.start = dict(student=_digest(p for p in model.student.parameters()),
                          student_state=_digest(model.student.state_dict().values()),
                          teacher=_digest(model.teacher.state_dict().values()))
        self._record(model.copy_paste, 'sample_classes', 'acp_classes')
        self._record(model.cutmix, 'random_boxes', 'cutmix_boxes')

    def _record(self, module, method, name):
        original = getattr(module, method)

        def recorded(*args, **kwargs):
            out = original(*args, **kwargs)
            self.draws.append((name, out.detach().cpu().clone()))
            return out

        setattr(module, method, recorded)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        self.records.append(dict(
            bank=model.confidence_bank.confidence.clone(),
            bank_state=_digest(model.confidence_bank.buffers()),
            presence=model.cutmix.presence.clone(),
            teacher=_digest(model.teacher.state_dict().values()),
            student=_digest(p for p in model.student.parameters()),
            images=[(s.ael_role, osp.basename(s.img_path)) for s in data_batch['data_samples']],
            sources=[(s.acm_class, osp.basename(s.img_path)) for s in data_batch['data_samples']
                     if s.ael_role == 'unsup_source']))


def _train(rank, port, toy_root, work_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE),
                      TORCH_DISTRIBUTED_DEBUG='DETAIL')
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
    # The toy configs are single-process; several processes use per-rank streams,
    # as the paper configs ship them.
    cfg.randomness = dict(seed=0, diff_rank_seed=True)
    cfg.work_dir = work_dir
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)  # CPU: no device_ids
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe, priority='LOWEST')
    runner.train()
    torch.save(dict(records=probe.records, start=probe.start, draws=probe.draws),
               osp.join(work_dir, f'probe_rank{rank}.pth'))


def test_two_ranks_agree_on_bank_presence_and_teacher_but_see_other_images(
        tmp_path, toy_root):
    work_dir = str(tmp_path / 'work')
    os.makedirs(work_dir)
    assert run_ranks(_train, WORLD_SIZE, toy_root, work_dir) == [0, 0]

    probe0, probe1 = (torch.load(osp.join(work_dir, f'probe_rank{r}.pth'), weights_only=False)
                      for r in range(WORLD_SIZE))
    # Identical weights at the start (mmengine broadcasts them after init_weights)...
    assert probe0['start'] == probe1['start']
    # ...but each rank its own random draws (with one seed for all ranks, every
    # draw would be the same: same bank, same shapes).
    for name in ('acp_classes', 'cutmix_boxes'):
        draws0 = [d for n, d in probe0['draws'] if n == name]
        draws1 = [d for n, d in probe1['draws'] if n == name]
        assert len(draws0) == len(draws1) == STEPS, name
        assert all(a.shape == b.shape for a, b in zip(draws0, draws1)), name
        assert not all(torch.equal(a, b) for a, b in zip(draws0, draws1)), name
    rank0, rank1 = probe0['records'], probe1['records']
    # One validation (teacher and student, results gathered over both ranks) and
    # the best-teacher checkpoint, written once.
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for path in scalars for line in open(path) if line.strip()]
    assert sum('teacher/mIoU' in r and 'student/mIoU' in r for r in records) == 1
    assert len(glob.glob(osp.join(work_dir, 'best_teacher_mIoU_iter_*.pth'))) == 1
    assert rank0[-1]['student'] != probe0['start']['student'], 'the student did not train'
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
    # The ACM (class, source image) choices are each rank's own too.
    assert [r['sources'] for r in rank0] != [r['sources'] for r in rank1]
    assert all(c >= 0 for r in rank0 + rank1 for c, _ in r['sources'])  # ACM chose them
    # Both ranks' unlabeled images reached the shared presence table, and the
    # bank moved away from its initial state.
    assert rank0[0]['bank_state'] != rank0[-1]['bank_state']
    rows_written = rank0[-1]['presence'].any(0).sum()
    assert rows_written > 0
