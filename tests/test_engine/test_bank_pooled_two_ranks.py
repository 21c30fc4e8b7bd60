"""Two ranks (gloo, CPU): the bank after each step is Eq. 7 on the pooled statistics.

Each rank recomputes its own Eq. 4 statistics (per class: the sum of the
student's softmax probability of the true class, and the pixel count) from
the student logits of its labeled images, captured with forward hooks. The
bank that ``AELHook`` leaves on both ranks must be the Eq. 7
update (with the bias correction ``ema / (1 - tau ** n)``) on
``sum over ranks of the sums / sum over ranks of the counts``: not each rank's
own statistic, and not the mean of the two ranks' per-class means (the ranks
see different class mixes and pixel counts, so each of those differs).
"""
import copy
import os
import os.path as osp
from types import SimpleNamespace

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ael_mmseg.engine.hooks import AELHook
from helpers.processes import gather_from_ranks

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
SIZE = 32
NUM_CLASSES = 10
TAU = 0.5  # a bank that moves visibly in two steps
STEPS = 2


def build_model():
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.data_preprocessor.size = (SIZE, SIZE)
    cfg.semi_train_cfg.update(warmup_iters=0, rampup_iters=0)
    cfg.confidence_bank.momentum = TAU
    cfg.copy_paste = None  # the labels the student sees are the batch's own
    torch.manual_seed(0)  # identical weights on every rank
    model = MODELS.build(copy.deepcopy(cfg))
    model.copy_student_to_teacher()
    model.cutmix.resize_presence(8)
    model.train()
    return model


def make_batch(rank, step):
    """2 labeled images + 1 CutMix pair; rank 0 sees classes 0-4 only, rank 1 all,
    with 4 ignored rows on rank 1 (so the per-class pixel counts differ)."""
    g = torch.Generator().manual_seed(100 * rank + step)
    roles = ['sup', 'sup', 'unsup', 'unsup_source']
    inputs = torch.randn(len(roles), 3, SIZE, SIZE, generator=g)
    samples = []
    for i, role in enumerate(roles):
        sample = SegDataSample()
        sample.set_metainfo(dict(ael_role=role, sample_idx=2 * rank + i % 2, acm_class=-1,
                                 img_shape=(SIZE, SIZE)))
        if role == 'sup':
            label = torch.randint(0, 5 if rank == 0 else NUM_CLASSES, (1, SIZE, SIZE),
                                  generator=g)
            if rank == 1:
                label[:, :4] = 255
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


def local_statistics(logits, inputs, labels):
    """Eq. 4 sums and counts, float64, from captured (input, logits) pairs."""
    captured_inputs, captured_logits = torch.cat(logits[0]), torch.cat(logits[1])
    rows = []
    for image in inputs:
        match = (captured_inputs == image).flatten(1).all(dim=1).nonzero().flatten()
        assert match.numel() > 0
        rows.append(captured_logits[match[0]])
    probs = F.softmax(F.interpolate(torch.stack(rows), size=(SIZE, SIZE), mode='bilinear',
                                    align_corners=False).double(), dim=1)
    sums = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    counts = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for c in range(NUM_CLASSES):
        sums[c] = probs[:, c][labels == c].sum()
        counts[c] = (labels == c).sum()
    return sums, counts


def _worker(rank, world_size, port, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    model = build_model()
    hook = AELHook()
    for step in range(STEPS):
        MessageHub.get_current_instance().update_info('iter', step)
        inputs, samples = make_batch(rank, step)
        labels = torch.stack([s.gt_sem_seg.data[0] for s in samples[:2]])
        captured = ([], [])
        handles = [
            model.student.backbone.register_forward_pre_hook(
                lambda m, args: captured[0].append(args[0].detach().clone())),
            model.student.decode_head.register_forward_hook(
                lambda m, args, out: captured[1].append(out.detach().clone())),
        ]
        model.loss(inputs, samples)
        for handle in handles:
            handle.remove()
        sums, counts = local_statistics(captured, inputs[:2], labels)
        hook.after_train_iter(SimpleNamespace(model=model, iter=step), step)
        bank = model.confidence_bank
        # Plain lists: tensors would travel as shared memory that vanishes
        # when the worker exits before the parent has read them.
        queue.put((rank, step, *(t.tolist() for t in (
            sums, counts, bank.ema, bank.num_updates, bank.confidence))))


def test_bank_is_eq7_on_the_pooled_sums_and_counts_of_both_ranks():
    results = gather_from_ranks(_worker, 2, 2 * STEPS)
    by_step = {}
    for rank, step, *values in results:
        by_step.setdefault(step, {})[rank] = [torch.tensor(v, dtype=torch.float64)
                                              for v in values]

    ema = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    updates = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for step in range(STEPS):
        (s0, c0, *_), (s1, c1, *_) = by_step[step][0], by_step[step][1]
        assert (c0[5:] == 0).all() and (c1 > 0).all()
        pooled = (s0 + s1) / (c0 + c1)
        ema = TAU * ema + (1 - TAU) * pooled
        updates += 1
        expected = ema / (1 - TAU**updates)
        for rank in (0, 1):
            _, _, bank_ema, bank_updates, confidence = by_step[step][rank]
            assert torch.equal(bank_updates.double(), updates), (step, rank)
            assert torch.allclose(bank_ema.double(), ema, rtol=1e-5), (step, rank)
            assert torch.allclose(confidence.double(), expected, rtol=1e-5), (step, rank)
        # The alternatives would have given other banks.
        mean_of_means = torch.where(c0 > 0, (s0 / c0.clamp_min(1) + s1 / c1) / 2, s1 / c1)
        assert (mean_of_means - pooled).abs().max() > 1e-4
        assert (s1 / c1 - pooled).abs().max() > 1e-4
