import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmseg.registry import MODELS

from helpers.fake_batch import make_semi_batch, toy_model_cfg

SIZE = 32


@pytest.fixture(scope='module')
def model_cfg():
    return toy_model_cfg(SIZE)


def build(cfg, **changes):
    cfg = copy.deepcopy(cfg)
    cfg.update(changes)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.copy_student_to_teacher()
    return model


def make_batch(num_labeled=2, num_pairs=1, num_classes=10, seed=0, copy_paste=True):
    return make_semi_batch(num_labeled, num_pairs, SIZE, num_classes, seed,
                           copy_paste=copy_paste)


def set_iter(iteration):
    MessageHub.get_current_instance().update_info('iter', iteration)


def test_losses_have_separate_keys_and_teacher_gets_no_gradient(model_cfg):
    model = build(model_cfg)
    model.cutmix.resize_presence(4)
    set_iter(10)
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert {'sup.decode.loss_ce', 'sup.aux.loss_ce', 'unsup.loss_ael',
            'unsup.loss_ael_labeled'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())


@pytest.mark.parametrize('key', ['sup.decode.loss_ce', 'unsup.loss_ael'])
def test_student_gets_gradients_from_each_loss(model_cfg, key):
    model = build(model_cfg)
    model.cutmix.resize_presence(4)
    set_iter(10)
    losses = model.loss(*make_batch())
    losses[key].backward()
    grads = [p.grad for p in model.student.backbone.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_unsup_weight_zero_is_supervised_only(model_cfg):
    model = build(model_cfg, semi_train_cfg=dict(unsup_weight=0.0))
    set_iter(10)
    losses = model.loss(*make_batch())
    assert not any(k.startswith('unsup') for k in losses)


def test_warmup_and_rampup_schedule(model_cfg):
    model = build(model_cfg, semi_train_cfg=dict(unsup_weight=2.0, warmup_iters=10,
                                                 rampup_iters=4))
    weights = []
    for iteration in (0, 9, 10, 11, 13, 50):
        set_iter(iteration)
        weights.append(model.unsup_weight_now())
    assert weights == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0]


def test_bank_statistics_are_staged_from_student_labeled_predictions(model_cfg):
    model = build(model_cfg, copy_paste=None)
    model.cutmix.resize_presence(4)
    set_iter(10)
    inputs, samples = make_batch(copy_paste=False)
    model.loss(inputs, samples)
    sums, counts = (model.step_record.confidence_sums, model.step_record.confidence_counts)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples[:2]])
    expected = torch.bincount(labels.flatten(), minlength=10).float()
    assert torch.equal(counts, expected)
    assert torch.all(sums <= counts) and torch.all(sums >= 0)
    # presence rows of the 2 unlabeled images were staged for the hook
    sample_idx, presence = (model.step_record.presence_indices, model.step_record.presence_rows)
    assert sample_idx.tolist() == [2, 3] and presence.shape == (2, 10)


def test_ema_follows_the_schedule_exactly(model_cfg):
    model = build(model_cfg)
    teacher = [p.detach().clone() for p in model.teacher.parameters()]
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    student = [p.detach().clone() for p in model.student.parameters()]
    model.update_teacher(5)
    decay = min(1 - 1 / 6, 0.99)
    assert decay == pytest.approx(5 / 6)
    for t0, s, t in zip(teacher, student, model.teacher.parameters()):
        assert torch.allclose(t, decay * t0 + (1 - decay) * s, atol=1e-6)
    model.update_teacher(0)  # decay 0: a copy of the student
    for s, t in zip(student, model.teacher.parameters()):
        assert torch.allclose(t, s)
    assert model.ema_decay(10_000) == 0.99


def test_predict_runs_the_teacher_or_the_student(model_cfg):
    model = build(model_cfg)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.5 * torch.randn_like(p))
    model.eval()
    inputs, samples = make_batch(num_labeled=2, num_pairs=0)
    inputs, samples = inputs[:2], samples[:2]
    with torch.no_grad():
        on_teacher = model.predict(inputs, copy.deepcopy(samples))
        direct_teacher = model.teacher.predict(inputs, copy.deepcopy(samples))
        model.semi_test_cfg['predict_on'] = 'student'
        on_student = model.predict(inputs, copy.deepcopy(samples))
        direct_student = model.student.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(on_teacher, direct_teacher):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
    for a, b in zip(on_student, direct_student):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
    assert not torch.equal(on_teacher[0].seg_logits.data, on_student[0].seg_logits.data)


def test_misspelt_option_lists_the_valid_ones(model_cfg):
    with pytest.raises(KeyError, match='warmup_iters'):
        build(model_cfg, semi_train_cfg=dict(warmup_iter=10))


def test_num_classes_disagreement_is_named(model_cfg):
    with pytest.raises(ValueError, match='num_classes'):
        build(model_cfg, confidence_bank=dict(num_classes=7))


def test_plain_checkpoint_loads_into_student_and_teacher(model_cfg):
    model = build(model_cfg)
    plain = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
             for k, v in model.student.state_dict().items()}
    model.load_state_dict(plain, strict=False)
    teacher = model.teacher.state_dict().values()
    for (name, s), t in zip(model.student.state_dict().items(), teacher):
        assert torch.equal(s, plain[name]) and torch.equal(t, plain[name])


def _bn_means(module):
    return [m.running_mean.clone() for m in module.modules() if hasattr(m, 'running_mean')]


def test_teacher_bn_statistics_follow_the_student_only_when_teacher_did_not_run(model_cfg):
    model = build(model_cfg)
    with torch.no_grad():
        for m in model.student.modules():
            if hasattr(m, 'running_mean'):
                m.running_mean.fill_(1.0)
    before = _bn_means(model.teacher)
    model.update_teacher(5)  # no teacher forward this step (warm-up / supervised only)
    decay = 5 / 6
    for b, a in zip(before, _bn_means(model.teacher)):
        assert torch.allclose(a, decay * b + (1 - decay), atol=1e-6)
    model.train()
    model.pseudo_labels(torch.randn(2, 3, SIZE, SIZE))  # train mode: own statistics
    own = _bn_means(model.teacher)
    model.update_teacher(5)
    for b, a in zip(own, _bn_means(model.teacher)):
        assert torch.equal(a, b)


def test_logits_resolution_mode_matches_the_head_grid(model_cfg):
    model = build(model_cfg, semi_train_cfg=dict(loss_resolution='logits'))
    model.cutmix.resize_presence(4)
    set_iter(10)
    inputs, samples = make_batch()
    seen = {}
    original = model.unsup_loss.forward

    def spy(logits, pseudo, conf, sampling_rates=None, generator=None):
        seen.setdefault('shapes', []).append((tuple(logits.shape), tuple(pseudo.shape)))
        return original(logits, pseudo, conf, sampling_rates, generator)

    model.unsup_loss.forward = spy
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['unsup.loss_ael'])
    with torch.no_grad():
        head_grid = model.student.decode_head(model.student.extract_feat(inputs[:2])).shape[-2:]
    assert head_grid != (SIZE, SIZE)
    for logits_shape, pseudo_shape in seen['shapes']:
        assert logits_shape[-2:] == tuple(head_grid) == pseudo_shape[-2:]
    counts = model.step_record.confidence_counts
    assert counts.sum() == 2 * head_grid[0] * head_grid[1]  # bank on the head grid too
    with pytest.raises(ValueError, match='loss_resolution'):
        build(model_cfg, semi_train_cfg=dict(loss_resolution='full'))


@pytest.mark.parametrize('key, value, match', [
    ('pseudo_label_thresh', 1.5, r'pseudo_label_thresh must be in \[0, 1\], got 1.5'),
    ('ema_momentum', -0.1, r'ema_momentum must be in \[0, 1\], got -0.1'),
    ('unsup_weight', -1.0, 'unsup_weight must be >= 0'),
    ('warmup_iters', -5, 'warmup_iters must be an int >= 0, got -5'),
    ('teacher_bn_mode', 'frozen', "teacher_bn_mode must be 'train' or 'eval'"),
    ('loss_resolution', 'half', "loss_resolution must be 'input' or 'logits'"),
])
def test_out_of_range_options_are_named(model_cfg, key, value, match):
    with pytest.raises(ValueError, match=match):
        build(model_cfg, semi_train_cfg={key: value})
