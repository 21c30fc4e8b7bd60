"""The teacher EMA through ``AELHook`` at real iterations, by value.

``teacher <- d * teacher + (1 - d) * student`` with ``d = min(1 - 1/(i + 1), 0.99)``
at the hook's iteration ``i`` (the original code; ``ema_momentum`` 0.99),
for every parameter. The floating buffers (BN running statistics) follow
the same EMA only when the teacher did not run in train mode during the
step (supervised warm-up, ``teacher_bn_mode='eval'``, supervised-only);
after a train-mode teacher forward they are the teacher's own. Integer
buffers (``num_batches_tracked``) are never averaged.
"""
import copy
import functools
import os.path as osp
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ael_mmseg.datasets.samplers import SemiSegBatchSampler, SemiSegSampler
from ael_mmseg.engine.hooks import AELHook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
SIZE = 32
# min(1 - 1/(i + 1), 0.99), written out.
DECAYS = {0: 0.0, 1: 0.5, 5: 5.0 / 6.0, 500: 0.99}


@functools.lru_cache()
def _toy_config():
    return Config.fromfile(TOY_CONFIG)


def load_cfg(**semi):
    init_default_scope('mmseg')
    cfg = copy.deepcopy(_toy_config())
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    cfg.model.semi_train_cfg.update({**dict(warmup_iters=0, rampup_iters=0), **semi})
    assert cfg.model.semi_train_cfg.get('ema_momentum', 0.99) == 0.99
    return cfg


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.cutmix.resize_presence(4)
    model.train()
    # A teacher unlike the student: parameters and BN statistics.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in model.teacher.parameters():
            t.add_(0.1 * torch.randn(t.shape, generator=g))
        for m in model.teacher.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model


def make_data(seed=0):
    """A raw (un-normalised) batch: 2 labeled + 2 paste + 1 CutMix pair."""
    g = torch.Generator().manual_seed(seed)
    roles = ['sup', 'sup', 'sup_paste', 'sup_paste', 'unsup', 'unsup_source']
    inputs, samples = [], []
    for i, role in enumerate(roles):
        inputs.append(torch.randint(0, 256, (3, SIZE, SIZE), generator=g).float())
        sample = SegDataSample()
        sample.set_metainfo(dict(ael_role=role, sample_idx=i % 2, acm_class=3,
                                 img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                                 pad_shape=(SIZE, SIZE)))
        if role.startswith('sup'):
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, 10, (1, SIZE, SIZE), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def snapshot(module):
    params = [p.detach().clone() for p in module.parameters()]
    floats = [b.clone() for b in module.buffers() if b.dtype.is_floating_point]
    ints = [b.clone() for b in module.buffers() if not b.dtype.is_floating_point]
    return params, floats, ints


def lerp(t, s, decay):
    return [decay * a + (1 - decay) * b for a, b in zip(t, s)]


def assert_all_close(actual, expected, what):
    assert len(actual) == len(expected) > 0
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert torch.allclose(a, e, rtol=1e-5, atol=1e-6), f'{what} #{i}'


def run_hook(model, iteration):
    MessageHub.get_current_instance().update_info('iter', iteration)
    AELHook().after_train_iter(SimpleNamespace(model=model, iter=iteration), 0)


def fake_runner(model, iteration):
    """What AELHook.before_train reads: the model, the iteration, the train loader."""
    dataset = SimpleNamespace(metainfo=dict(classes=[f'c{i}' for i in range(model.num_classes)]),
                              labeled=[None] * 2, unlabeled=[None] * 4, paste=None)
    sampler = SemiSegSampler(dataset, seed=0)
    SemiSegBatchSampler(sampler, batch_size=1)
    loader = SimpleNamespace(dataset=dataset, batch_sampler=SimpleNamespace(sampler=sampler),
                             num_workers=0)
    return SimpleNamespace(model=model, iter=iteration, seed=0, train_dataloader=loader,
                           train_loop=None)


def test_before_train_copies_the_student_on_a_fresh_run_only():
    model = build(load_cfg())
    AELHook().before_train(fake_runner(model, 3))  # a resume
    assert not torch.equal(next(model.teacher.parameters()), next(model.student.parameters()))
    AELHook().before_train(fake_runner(model, 0))
    for (name, s), t in zip(model.student.state_dict().items(),
                            model.teacher.state_dict().values()):
        assert torch.equal(s, t), name


def test_no_teacher_forward_parameters_and_bn_statistics_follow_the_student():
    """Steps without a teacher forward (the supervised warm-up): buffers too."""
    cfg = load_cfg(warmup_iters=1000)
    model = build(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    for iteration, decay in sorted(DECAYS.items()):
        MessageHub.get_current_instance().update_info('iter', iteration)
        teacher = snapshot(model.teacher)
        losses = model.train_step(make_data(iteration), optim_wrapper)
        assert not any(k.startswith('unsup') for k in losses)  # warm-up: supervised only
        student = snapshot(model.student)
        assert all(torch.equal(a, b) for a, b in zip(snapshot(model.teacher)[1], teacher[1]))
        run_hook(model, iteration)
        after = snapshot(model.teacher)
        assert_all_close(after[0], lerp(teacher[0], student[0], decay), 'parameter')
        assert_all_close(after[1], lerp(teacher[1], student[1], decay), 'float buffer')
        assert all(torch.equal(a, b) for a, b in zip(after[2], teacher[2]))
        if iteration > 0:  # the test can tell a copy from an average
            assert not torch.allclose(after[0][0], student[0][0])


def test_train_mode_teacher_keeps_its_own_bn_statistics():
    """Full AEL steps (train-mode teacher forward): parameters only."""
    cfg = load_cfg()
    model = build(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    for iteration, decay in sorted(DECAYS.items()):
        MessageHub.get_current_instance().update_info('iter', iteration)
        teacher = snapshot(model.teacher)
        losses = model.train_step(make_data(iteration), optim_wrapper)
        assert 'unsup.loss_ael' in losses
        own = snapshot(model.teacher)  # statistics of the teacher's own forward
        assert not torch.equal(own[1][0], teacher[1][0])
        assert all(torch.equal(a, b) for a, b in zip(own[0], teacher[0]))  # no gradient
        student = snapshot(model.student)
        run_hook(model, iteration)
        after = snapshot(model.teacher)
        assert_all_close(after[0], lerp(teacher[0], student[0], decay), 'parameter')
        assert all(torch.equal(a, b) for a, b in zip(after[1], own[1]))
        assert all(torch.equal(a, b) for a, b in zip(after[2], own[2]))
        if iteration > 0:
            assert not torch.allclose(after[0][0], student[0][0])

    # The rule is per step: a next hook call without a teacher forward
    # averages the buffers again.
    before = snapshot(model.teacher)
    run_hook(model, 500)
    again = snapshot(model.teacher)
    assert_all_close(again[1], lerp(before[1], snapshot(model.student)[1], 0.99), 'buffer')
