"""The paper configs train the original's optimisation: its train.py at world_size 8.

The original (hzhupku/SemiSeg-AEL, train.py) builds SGD over two kinds of
parameter groups, the backbone at ``lr`` and the decoder and auxiliary head at
``lr * 10`` (lines 113-119), sets the poly lr before every step, and divides
every loss by the world size before ``backward()`` (lines 311, 358-365) while
DDP averages the gradients over the ranks. Here that rule is re-stated in
plain PyTorch and run side by side with the optimizer and scheduler built from
our shipped config, on the same model and the same eight per-rank batches.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from helpers.paper_configs import save_standin_pretrained, shrink_model_cfg
from helpers.stock_tools import REPO_ROOT

CONFIGS = {
    'cityscapes': 'configs/ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py',
    'voc12aug': 'configs/ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_32-513x513.py',
}
# The released yamls' optimizer (both datasets: lr 0.01, momentum 0.9, wd 1e-4).
ORIGINAL = dict(lr=0.01, momentum=0.9, weight_decay=1e-4, power=0.9, world_size=8)
STEPS = 3
SIZE = 32


def _rank_batches(num_classes, seed):
    """STEPS x world_size per-rank batches of 2 labeled crops (inputs, samples)."""
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for _ in range(STEPS):
        ranks = []
        for _ in range(ORIGINAL['world_size']):
            inputs = torch.randn(2, 3, SIZE, SIZE, generator=gen)
            samples = []
            for _ in range(2):
                label = torch.randint(num_classes, (1, SIZE, SIZE), generator=gen)
                label[:, :4] = 255  # some ignored pixels, as in real crops
                sample = SegDataSample(gt_sem_seg=PixelData(data=label))
                sample.set_metainfo(dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
                samples.append(sample)
            ranks.append((inputs, samples))
        steps.append(ranks)
    return steps


def _supervised_loss(student, inputs, samples, seed):
    torch.manual_seed(seed)  # the heads' dropout draws the same masks in every run
    losses = student.loss(inputs, samples)
    return sum(v for k, v in losses.items() if 'loss' in k)


def _accumulate_rank_gradients(student, step, ranks, loss_scale):
    """Each rank's ``loss * loss_scale`` backward, summed: DDP's gradient mean when
    ``loss_scale`` includes ``1 / world_size``."""
    for rank, (inputs, samples) in enumerate(ranks):
        loss = _supervised_loss(student, inputs, samples, seed=100 * step + rank)
        (loss * loss_scale).backward()


def _train_like_the_original(model, steps, max_iters):
    """train.py's rule: param groups, poly lr, loss / world_size, DDP gradient mean."""
    student = model.student
    lr, world_size = ORIGINAL['lr'], ORIGINAL['world_size']
    groups = [dict(params=list(student.backbone.parameters()), lr=lr)]
    for head in (student.auxiliary_head, student.decode_head):
        groups.append(dict(params=list(head.parameters()), lr=lr * 10))
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=ORIGINAL['momentum'],
                                weight_decay=ORIGINAL['weight_decay'])
    base_lrs = [g['lr'] for g in optimizer.param_groups]
    for i, ranks in enumerate(steps):
        for group, base in zip(optimizer.param_groups, base_lrs):
            group['lr'] = base * (1 - i / max_iters)**ORIGINAL['power']
        optimizer.zero_grad()
        # each rank: (loss / world_size).backward(); DDP: mean over the ranks
        _accumulate_rank_gradients(student, i, ranks, 1 / world_size / world_size)
        optimizer.step()


def _train_with_config(model, steps, cfg):
    """Our step: the config's optimizer wrapper and scheduler, DDP gradient mean, no scaling."""
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    scheduler = PARAM_SCHEDULERS.build(
        copy.deepcopy(cfg.param_scheduler[0]), default_args=dict(optimizer=wrapper))
    for i, ranks in enumerate(steps):
        wrapper.zero_grad()
        _accumulate_rank_gradients(model.student, i, ranks, 1 / len(ranks))
        wrapper.step()
        scheduler.step()
    return wrapper


def _nominal_sgd(model, steps, cfg):
    """The config's lr and wd without the folding and the head groups: must differ."""
    optimizer = torch.optim.SGD(model.student.parameters(), lr=ORIGINAL['lr'],
                                momentum=ORIGINAL['momentum'],
                                weight_decay=ORIGINAL['weight_decay'])
    for i, ranks in enumerate(steps):
        optimizer.zero_grad()
        _accumulate_rank_gradients(model.student, i, ranks, 1 / len(ranks))
        optimizer.step()


@pytest.fixture(scope='module')
def standin(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('pretrained') / 'resnet18_v1c_standin.pth')
    save_standin_pretrained(path)
    return path


@pytest.mark.parametrize('dataset', sorted(CONFIGS))
def test_config_step_equals_the_original_train_py_at_8_gpus(dataset, standin):
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[dataset]))
    torch.manual_seed(0)
    model = MODELS.build(shrink_model_cfg(copy.deepcopy(cfg.model), standin))
    model.init_weights()
    ours, original, nominal = model, copy.deepcopy(model), copy.deepcopy(model)
    initial = [p.detach().clone() for p in model.student.parameters()]
    teacher_before = copy.deepcopy(ours.teacher.state_dict())
    steps = _rank_batches(ours.num_classes, seed=1)
    max_iters = cfg.train_cfg.max_iters

    wrapper = _train_with_config(ours, steps, cfg)
    _train_like_the_original(original, steps, max_iters)
    _nominal_sgd(nominal, steps, cfg)

    worst = max((a - b).abs().max().item() for a, b in zip(
        ours.student.parameters(), original.student.parameters()))
    assert worst < 1e-6, f'largest parameter difference to the original rule: {worst:g}'
    moved = max((a - b).abs().max().item() for a, b in zip(ours.student.parameters(), initial))
    assert moved > 1e-4, 'the steps did not change the student'
    off = max((a - b).abs().max().item() for a, b in zip(
        nominal.student.parameters(), original.student.parameters()))
    assert off > 1e-4, 'the comparison cannot tell the recipe from plain SGD'
    # The teacher gets no gradient: the optimizer leaves it alone.
    assert all(torch.equal(v, ours.teacher.state_dict()[k]) for k, v in teacher_before.items())
    # The optimizer holds the student's parameters only (StudentOptimWrapperConstructor).
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert in_optimizer == {id(p) for p in ours.student.parameters()}
    # Effective groups: backbone lr/8, heads 10x that, weight decay x8, as configured.
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            lrs[id(param)] = (group['initial_lr'], group['weight_decay'], group['momentum'])
    expect_wd = ORIGINAL['weight_decay'] * ORIGINAL['world_size']
    backbone_lr = ORIGINAL['lr'] / ORIGINAL['world_size']
    for name, param in ours.student.named_parameters():
        lr = backbone_lr * (10 if name.startswith(('decode_head', 'auxiliary_head')) else 1)
        assert lrs[id(param)] == pytest.approx((lr, expect_wd, 0.9)), name


def test_student_constructor_names_what_it_needs():
    cfg = dict(type='OptimWrapper', constructor='StudentOptimWrapperConstructor',
               optimizer=dict(type='SGD', lr=0.01))
    init_default_scope('mmseg')
    with pytest.raises(TypeError, match='needs a model with a `student`'):
        build_optim_wrapper(torch.nn.Conv2d(3, 3, 1), cfg)
