"""Value-level pins of what one ``AELSegmentor.loss`` step computes.

Every test recomputes a value independently, from the teacher's and the
student's raw outputs (their decode-head logits, captured with forward hooks
and matched to the images they were computed on), and compares it with what
the segmentor returns or stages:

* ``unsup.loss_ael`` on the mixed images and ``unsup.loss_ael_labeled`` on the
  labeled crops, Eq. 10-13: DR weights ``(max p_teacher) ** gamma``, AES keep
  rates from the bank (set so that every rate is exactly 0 or 1, which makes
  the AES draw deterministic whatever random numbers are used), and
  ``sum(w * CE) / sum(w)`` over kept, non-ignored pixels. The CutMix boxes
  are forced, so the test knows which pixels come from the source;
* the confidence bank statistics (Eq. 4) and the Eq. 7 update, against the
  student's softmax with Adaptive Copy-Paste at probability 1;
* ``pseudo_label_thresh`` by value, ``teacher_bn_mode='eval'`` and
  ``unsup_on_labeled=False``.

Each test also shows that the plausible mistakes (target and source
swapped, unmixed pseudo-labels, the student's instead of the teacher's
confidence, AES rates not taken from the bank, labels before the paste)
would give a different value, so the pins can fail.
"""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ael_mmseg.engine.hooks import AELHook
from ael_mmseg.utils import keyed_random as kr

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY_CONFIG = osp.join(REPO, 'configs', 'ael',
                      'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py')
SIZE = 32
NUM_CLASSES = 10
IGNORE = 255
GAMMA = 2.0  # the paper's DR exponent (Eq. 12)
NUM_LABELED = 2
NUM_PAIRS = 2
# Forced CutMix boxes (y0, x0, y1, x1), end-exclusive, one per pair; not
# symmetric, so target and source cannot be swapped unnoticed.
BOXES = torch.tensor([[4, 6, 20, 26], [10, 0, 32, 12]])
# Bank confidence per class: 0 (rate 1, always kept) or 1 (rate 0, always
# dropped). With beta = 1, rate_c = (1 - Conf_c) / max(1 - Conf).
BANK = torch.tensor([0., 1., 0., 1., 1., 0., 1., 0., 1., 0.])
PASTE_CLASS = 7  # the only class ACP may paste in the bank test


# --------------------------------------------------------------------- setup
def toy_cfg(copy_paste=False, **semi):
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.data_preprocessor.size = (SIZE, SIZE)
    cfg.semi_train_cfg.update({**dict(warmup_iters=0, rampup_iters=0), **semi})
    assert cfg.unsup_loss.gamma == GAMMA and cfg.unsup_loss.beta == 1.0
    if copy_paste:
        cfg.copy_paste.update(prob=1.0, num_sampled_classes=1, excluded_classes=[
            c for c in range(NUM_CLASSES) if c != PASTE_CLASS])
    else:
        cfg.copy_paste = None
    return cfg


def build(cfg):
    """Seeded model; the student is perturbed so that teacher and student differ."""
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    model.copy_student_to_teacher()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.cutmix.resize_presence(8)
    model.train()
    MessageHub.get_current_instance().update_info('iter', 10)
    return model


def set_bank(model, confidence):
    """Bank whose bias-corrected confidence is exactly ``confidence``.

    ``tau ** 1e5`` underflows to 0 in float32, so the correction is exactly 1.
    """
    bank = model.confidence_bank
    bank.ema.copy_(confidence)
    bank.num_updates.fill_(1e5)
    assert torch.equal(bank.confidence, confidence)


def force_boxes(monkeypatch, model):
    def boxes(source_pred, classes, generator=None):
        return BOXES.clone(), torch.ones(len(BOXES), dtype=torch.bool)

    monkeypatch.setattr(model.cutmix, 'component_boxes', boxes)


def make_batch(seed=0, copy_paste=False):
    g = torch.Generator().manual_seed(seed)
    roles = ['sup'] * NUM_LABELED + ['sup_paste'] * (NUM_LABELED if copy_paste else 0) + \
        ['unsup'] * NUM_PAIRS + ['unsup_source'] * NUM_PAIRS
    inputs = torch.randn(len(roles), 3, SIZE, SIZE, generator=g)
    samples = []
    for i, role in enumerate(roles):
        sample = SegDataSample()
        unlabeled = role.startswith('unsup')
        sample.set_metainfo(dict(ael_role=role, sample_idx=i - len(roles) + 2 * NUM_PAIRS
                                 if unlabeled else i, acm_class=3, img_shape=(SIZE, SIZE),
                                 ori_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
        if not unlabeled:
            label = torch.randint(0, NUM_CLASSES, (1, SIZE, SIZE), generator=g)
            label[:, :2] = IGNORE  # two ignored rows
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


def parts(inputs, samples):
    """The batch by role, labels copied before the model overwrites them."""
    out = {}
    for role in ('sup', 'sup_paste', 'unsup', 'unsup_source'):
        index = [i for i, s in enumerate(samples) if s.ael_role == role]
        labels = [samples[i].gt_sem_seg.data[0].clone() for i in index
                  if 'gt_sem_seg' in samples[i]]
        out[role] = (inputs[index].clone(), torch.stack(labels) if labels else None)
    return out


class Capture:
    """Inputs and decode-head logits of every forward of one EncoderDecoder."""

    def __init__(self, segmentor):
        self.inputs, self.logits = [], []
        self.handles = [
            segmentor.backbone.register_forward_pre_hook(
                lambda m, args: self.inputs.append(args[0].detach().clone())),
            segmentor.decode_head.register_forward_hook(
                lambda m, args, out: self.logits.append(out.detach().clone())),
        ]

    def remove(self):
        for handle in self.handles:
            handle.remove()

    def rows(self, images):
        """Logits computed on each of ``images`` (exactly equal input), stacked."""
        assert len(self.inputs) == len(self.logits) > 0
        inputs, logits = torch.cat(self.inputs), torch.cat(self.logits)
        assert inputs.shape[0] == logits.shape[0]
        found = []
        for image in images:
            match = (inputs == image).flatten(1).all(dim=1).nonzero().flatten()
            assert match.numel() > 0, 'no forward pass ran on an expected image'
            found.append(logits[match[0]])
        return torch.stack(found)


def upsampled(logits):
    return F.interpolate(logits, size=(SIZE, SIZE), mode='bilinear', align_corners=False)


def teacher_pseudo(logits):
    """(max softmax, argmax) of the teacher at the crop size."""
    return F.softmax(upsampled(logits).float(), dim=1).max(dim=1)


def box_mask():
    ys = torch.arange(SIZE).view(1, SIZE, 1)
    xs = torch.arange(SIZE).view(1, 1, SIZE)
    b = BOXES.view(-1, 4, 1, 1)
    return (ys >= b[:, 0]) & (ys < b[:, 2]) & (xs >= b[:, 1]) & (xs < b[:, 3])


def reference_loss(student_logits, pseudo, conf, confidence, gamma=GAMMA):
    """Eq. 10-13 in float64, from scratch; AES rates must be 0 or 1 (deterministic)."""
    logits = upsampled(student_logits).double()
    unconf = 1.0 - confidence.double()
    rates = unconf / unconf.max()
    assert set(rates.tolist()) <= {0.0, 1.0}
    kept = (rates[logits.argmax(dim=1)] == 1.0) & (pseudo != IGNORE)
    ce = -F.log_softmax(logits, dim=1).gather(1, pseudo.clamp(max=NUM_CLASSES - 1)[:, None])[:, 0]
    weight = conf.double() ** gamma
    loss = (weight * ce)[kept].sum() / weight[kept].sum()
    return loss, kept


def run_step(model, inputs, samples):
    student, teacher = Capture(model.student), Capture(model.teacher)
    try:
        losses = model.loss(inputs, samples)
    finally:
        student.remove()
        teacher.remove()
    return losses, student, teacher


def expected_unsup(batch, student, teacher, confidence, thresh=0.0):
    """Expected ``unsup.loss_ael`` and ``unsup.loss_ael_labeled`` and what they used."""
    (sup, _), (target, _), (source, _) = batch['sup'], batch['unsup'], batch['unsup_source']
    mask = box_mask()
    mixed_images = torch.where(mask[:, None], source, target)
    t_conf, t_pred = teacher_pseudo(teacher.rows(target))
    s_conf, s_pred = teacher_pseudo(teacher.rows(source))
    pseudo = torch.where(mask, s_pred, t_pred)
    conf = torch.where(mask, s_conf, t_conf)
    l_conf, l_pred = teacher_pseudo(teacher.rows(sup))
    thresholded = pseudo.masked_fill(conf < thresh, IGNORE)
    l_thresholded = l_pred.masked_fill(l_conf < thresh, IGNORE)
    mixed_logits = student.rows(mixed_images)
    sup_logits = student.rows(sup)
    loss, kept = reference_loss(mixed_logits, thresholded, conf, confidence)
    loss_labeled, kept_labeled = reference_loss(sup_logits, l_thresholded, l_conf, confidence)
    return SimpleNamespace(loss=loss, loss_labeled=loss_labeled, kept=kept,
                           kept_labeled=kept_labeled, pseudo=pseudo, conf=conf,
                           t_pred=t_pred, s_pred=s_pred, t_conf=t_conf, s_conf=s_conf,
                           mixed_logits=mixed_logits, sup_logits=sup_logits,
                           mixed_images=mixed_images)


def close(actual, expected, rtol=1e-5):
    actual, expected = float(torch.as_tensor(actual).detach()), float(expected)
    return abs(actual - expected) <= rtol * abs(expected) + 1e-7


def assert_differs(actual, alternative):
    assert not close(actual, alternative, rtol=1e-3), (float(actual), float(alternative))


# --------------------------------------------------------------------- tests
def test_unsup_losses_are_eq_10_to_13_on_the_box_mixed_teacher_outputs(monkeypatch):
    model = build(toy_cfg())
    set_bank(model, BANK)
    force_boxes(monkeypatch, model)
    inputs, samples = make_batch()
    batch = parts(inputs, samples)
    losses, student, teacher = run_step(model, inputs, samples)
    ref = expected_unsup(batch, student, teacher, BANK)
    # The test's setup is informative: both AES outcomes occur, the teacher's
    # target and source predictions differ inside the boxes, and the student
    # disagrees with the pseudo-labels on some pixels.
    for kept in (ref.kept, ref.kept_labeled):
        assert 0 < int(kept.sum()) < kept.numel() - 2 * SIZE * NUM_PAIRS
    assert (box_mask() & (ref.t_pred != ref.s_pred)).any()
    assert (upsampled(ref.mixed_logits).argmax(dim=1) != ref.pseudo).any()

    assert set(losses) >= {'unsup.loss_ael', 'unsup.loss_ael_labeled'}
    assert close(losses['unsup.loss_ael'], ref.loss), (losses['unsup.loss_ael'], ref.loss)
    assert close(losses['unsup.loss_ael_labeled'], ref.loss_labeled)

    # What the plausible mistakes would have given instead.
    mask = box_mask()
    swapped_pseudo = torch.where(mask, ref.t_pred, ref.s_pred)
    swapped_conf = torch.where(mask, ref.t_conf, ref.s_conf)
    mistakes = {
        'target/source swapped': reference_loss(ref.mixed_logits, swapped_pseudo, swapped_conf,
                                                BANK)[0],
        'unmixed pseudo-labels': reference_loss(ref.mixed_logits, ref.t_pred, ref.t_conf,
                                                BANK)[0],
        'student confidence': reference_loss(
            ref.mixed_logits, ref.pseudo,
            F.softmax(upsampled(ref.mixed_logits), dim=1).max(dim=1).values, BANK)[0],
        'uniform weights (no DR)': reference_loss(ref.mixed_logits, ref.pseudo, ref.conf,
                                                  BANK, gamma=0.0)[0],
        'rates not from the bank': reference_loss(ref.mixed_logits, ref.pseudo, ref.conf,
                                                  torch.zeros(NUM_CLASSES))[0],
        'inverted rates': reference_loss(ref.mixed_logits, ref.pseudo, ref.conf,
                                         1.0 - BANK)[0],
    }
    for name, value in mistakes.items():
        assert not close(losses['unsup.loss_ael'], value, rtol=1e-3), name

    # The ACM presence rows staged for the hook: the teacher's own (unmixed)
    # predictions on targets then sources, present iff area >= 1 % of the crop.
    sample_idx, presence = (model.step_record.presence_indices, model.step_record.presence_rows)
    preds = torch.cat([ref.t_pred, ref.s_pred])
    counts = torch.stack([torch.bincount(p.flatten(), minlength=NUM_CLASSES) for p in preds])
    assert sample_idx.tolist() == [0, 1, 2, 3]
    assert torch.equal(presence, counts >= 0.01 * SIZE * SIZE)


def test_bank_statistics_are_eq_4_on_the_student_softmax_after_copy_paste():
    model = build(toy_cfg(copy_paste=True))
    inputs, samples = make_batch(seed=1, copy_paste=True)
    batch = parts(inputs, samples)
    (sup, labels), (paste, paste_labels) = batch['sup'], batch['sup_paste']
    pasted = paste_labels == PASTE_CLASS
    assert pasted.any() and (labels[pasted] != PASTE_CLASS).any()
    expected_images = torch.where(pasted[:, None], paste, sup)
    expected_labels = torch.where(pasted, paste_labels, labels)
    losses, student, _ = run_step(model, inputs, samples)
    assert all(torch.isfinite(v) for v in losses.values())

    def eq4(logits, gt):
        probs = F.softmax(upsampled(logits).double(), dim=1)
        sums = torch.zeros(NUM_CLASSES, dtype=torch.float64)
        counts = torch.zeros(NUM_CLASSES, dtype=torch.float64)
        for c in range(NUM_CLASSES):
            pixels = gt == c
            sums[c] = probs[:, c][pixels].sum()
            counts[c] = pixels.sum()
        return sums, counts

    sums, counts = eq4(student.rows(expected_images), expected_labels)
    record = model.step_record
    staged_sums, staged_counts = record.confidence_sums, record.confidence_counts
    assert torch.equal(staged_counts.double(), counts)
    assert torch.allclose(staged_sums.double(), sums, rtol=1e-5)
    # Labels before the paste would give other counts.
    assert not torch.equal(eq4(student.rows(expected_images), labels)[1], counts)

    hook = AELHook()
    hook.after_train_iter(SimpleNamespace(model=model, iter=10), 0)
    step1 = sums / counts
    assert torch.allclose(model.confidence_bank.confidence.double(), step1, rtol=1e-5)

    # Second step, Eq. 7 with the bias correction: ema / (1 - tau ** n).
    tau = model.confidence_bank.momentum
    MessageHub.get_current_instance().update_info('iter', 11)
    inputs, samples = make_batch(seed=2, copy_paste=True)
    batch = parts(inputs, samples)
    (sup, labels), (paste, paste_labels) = batch['sup'], batch['sup_paste']
    pasted = paste_labels == PASTE_CLASS
    _, student, _ = run_step(model, inputs, samples)
    sums2, counts2 = eq4(student.rows(torch.where(pasted[:, None], paste, sup)),
                         torch.where(pasted, paste_labels, labels))
    hook.after_train_iter(SimpleNamespace(model=model, iter=11), 0)
    assert (counts2 > 0).all()
    ema = tau * (1 - tau) * step1 + (1 - tau) * sums2 / counts2
    assert torch.allclose(model.confidence_bank.confidence.double(), ema / (1 - tau**2),
                          rtol=1e-5)


def test_pseudo_label_thresh_ignores_teacher_pixels_below_it(monkeypatch):
    cfg = toy_cfg()
    model = build(cfg)
    set_bank(model, BANK)
    force_boxes(monkeypatch, model)
    inputs, samples = make_batch()
    torch.manual_seed(5)
    _, student, teacher = run_step(model, inputs, samples)
    ref0 = expected_unsup(parts(inputs, samples), student, teacher, BANK)
    thresh = float(ref0.conf.median())

    model = build(toy_cfg(pseudo_label_thresh=thresh))
    set_bank(model, BANK)
    force_boxes(monkeypatch, model)
    inputs, samples = make_batch()
    batch = parts(inputs, samples)
    torch.manual_seed(5)
    losses, student, teacher = run_step(model, inputs, samples)
    ref = expected_unsup(batch, student, teacher, BANK, thresh=thresh)
    below = ref.conf < thresh
    assert below.any() and (ref.kept & ~below).any()
    assert not (ref.kept & below).any()
    assert close(losses['unsup.loss_ael'], ref.loss), (losses['unsup.loss_ael'], ref.loss)
    assert close(losses['unsup.loss_ael_labeled'], ref.loss_labeled)
    # Without the threshold the value would be another one.
    assert_differs(losses['unsup.loss_ael'], reference_loss(
        ref.mixed_logits, ref.pseudo, ref.conf, BANK)[0])


def randomize_teacher_bn(model):
    """Teacher running statistics unlike the student's (and unlike batch statistics)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.teacher.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))


def _floating_bn_buffers(module):
    return [(name, b.clone()) for name, b in module.named_buffers() if b.dtype.is_floating_point]


def test_teacher_bn_mode_eval_uses_running_statistics_that_follow_the_student(monkeypatch):
    model = build(toy_cfg(teacher_bn_mode='eval'))
    assert model.student.training and not any(m.training for m in model.teacher.modules())
    randomize_teacher_bn(model)
    set_bank(model, BANK)
    force_boxes(monkeypatch, model)
    teacher_before = _floating_bn_buffers(model.teacher)
    tracked_before = [b.clone() for n, b in model.teacher.named_buffers()
                      if n.endswith('num_batches_tracked')]
    inputs, samples = make_batch()
    batch = parts(inputs, samples)
    losses, student, teacher = run_step(model, inputs, samples)

    # The teacher's logits are those of an eval-mode forward, image by image
    # (running statistics: independent of what else is in the batch).
    images = torch.cat([batch['unsup'][0], batch['unsup_source'][0], batch['sup'][0]])
    with torch.no_grad():
        alone = torch.cat([model.teacher.decode_head(model.teacher.extract_feat(x[None]))
                           for x in images])
    assert torch.allclose(teacher.rows(images), alone, atol=1e-5)
    ref = expected_unsup(batch, student, teacher, BANK)
    assert close(losses['unsup.loss_ael'], ref.loss)
    assert close(losses['unsup.loss_ael_labeled'], ref.loss_labeled)
    # The forward left the running statistics alone ...
    for (name, before), (_, after) in zip(teacher_before, _floating_bn_buffers(model.teacher)):
        assert torch.equal(before, after), name
    # ... and the EMA hook moves them towards the student's, as the parameters.
    student_buffers = _floating_bn_buffers(model.student)
    AELHook().after_train_iter(SimpleNamespace(model=model, iter=5), 0)
    decay = 5 / 6
    for (name, t0), (_, s), (_, t1) in zip(teacher_before, student_buffers,
                                           _floating_bn_buffers(model.teacher)):
        assert not torch.allclose(t0, s), name
        assert torch.allclose(t1, decay * t0 + (1 - decay) * s, atol=1e-6), name
    tracked_after = [b for n, b in model.teacher.named_buffers()
                     if n.endswith('num_batches_tracked')]
    assert all(torch.equal(a, b) for a, b in zip(tracked_before, tracked_after))


@pytest.mark.parametrize('bn_mode', ['train', 'eval'])
def test_unsup_on_labeled_false_drops_only_the_labeled_loss(monkeypatch, bn_mode):
    results = {}
    for on_labeled in (True, False):
        model = build(toy_cfg(unsup_on_labeled=on_labeled, teacher_bn_mode=bn_mode))
        randomize_teacher_bn(model)
        set_bank(model, BANK)
        force_boxes(monkeypatch, model)
        inputs, samples = make_batch()
        batch = parts(inputs, samples)
        torch.manual_seed(7)
        losses, student, teacher = run_step(model, inputs, samples)
        results[on_labeled] = losses
    assert 'unsup.loss_ael_labeled' in results[True]
    assert set(results[False]) == set(results[True]) - {'unsup.loss_ael_labeled'}
    # The mixed-image loss is still Eq. 10-13 on the teacher's and student's outputs.
    sup = batch['sup'][0]
    (target, _), (source, _) = batch['unsup'], batch['unsup_source']
    t_conf, t_pred = teacher_pseudo(teacher.rows(target))
    s_conf, s_pred = teacher_pseudo(teacher.rows(source))
    mask = box_mask()
    assert (mask & (t_pred != s_pred)).any()  # mixing matters here
    expected, _ = reference_loss(student.rows(torch.where(mask[:, None], source, target)),
                                 torch.where(mask, s_pred, t_pred),
                                 torch.where(mask, s_conf, t_conf), BANK)
    assert close(results[False]['unsup.loss_ael'], expected)
    teacher_inputs = torch.cat(teacher.inputs)
    assert not any((teacher_inputs == x).flatten(1).all(1).any() for x in sup)
    if bn_mode == 'eval':
        # The teacher's outputs do not depend on its batch: nothing else changes.
        for key, value in results[False].items():
            assert torch.allclose(value, results[True][key], rtol=1e-6, atol=0), key


@pytest.mark.parametrize('beta', [1.0, 2.0])
def test_fractional_aes_rates_come_from_the_bank(monkeypatch, beta):
    """AES with rates strictly between 0 and 1: the same uniform numbers, drawn again.

    The loss draws from the keyed generator the model hands it (seed, rank,
    iteration, forward, slot); the reference re-draws ``torch.rand`` of the
    pixel grid from a generator made from that key and keeps a
    pixel iff ``u < s_c`` for the student's predicted class ``c``, with
    ``s_c = ((1 - Conf_c) / max_k (1 - Conf_k)) ** beta`` from the bank.
    """
    cfg = toy_cfg()
    cfg.unsup_loss.beta = beta
    model = build(cfg)
    confidence = torch.linspace(0.05, 0.9, NUM_CLASSES)[torch.randperm(
        NUM_CLASSES, generator=torch.Generator().manual_seed(4))]
    set_bank(model, confidence)
    force_boxes(monkeypatch, model)
    states = []
    model.unsup_loss.register_forward_pre_hook(
        lambda m, args, kwargs: states.append(kwargs['generator'].get_state()),
        with_kwargs=True)
    inputs, samples = make_batch()
    batch = parts(inputs, samples)
    losses, student, teacher = run_step(model, inputs, samples)
    ref = expected_unsup(batch, student, teacher, torch.zeros(NUM_CLASSES))  # outputs only
    assert len(states) == 2  # mixed images, then labeled crops
    iteration = MessageHub.get_current_instance().get_info('iter', 0)
    for state, slot in zip(states, (kr.SLOT_AES_MIXED, kr.SLOT_AES_LABELED)):
        keyed = kr.keyed_torch('cpu', model.key_seed, kr.MODEL, 0, iteration, 0, slot)
        assert torch.equal(state, keyed.get_state()), slot
    rates = ((1 - confidence.double()) / (1 - confidence.double()).max())**beta
    assert ((rates > 0.05) & (rates < 0.95)).sum() >= 5

    def loss_with_draw(state, logits, pseudo, conf, rates=rates, by=None):
        up = upsampled(logits)
        by = up.argmax(dim=1) if by is None else by  # the student's class
        generator = torch.Generator()
        generator.set_state(state)
        u = torch.rand(by.shape, generator=generator)
        kept = u < rates[by]
        ce = F.cross_entropy(up.double(), pseudo, reduction='none')
        weight = conf.double()**GAMMA
        return (weight * ce)[kept].sum() / weight[kept].sum(), kept

    l_conf, l_pred = teacher_pseudo(teacher.rows(batch['sup'][0]))
    expected, kept = loss_with_draw(states[0], ref.mixed_logits, ref.pseudo, ref.conf)
    expected_labeled, _ = loss_with_draw(states[1], ref.sup_logits, l_pred, l_conf)
    assert 0.2 < float(kept.float().mean()) < 0.9
    assert close(losses['unsup.loss_ael'], expected), (losses['unsup.loss_ael'], expected)
    assert close(losses['unsup.loss_ael_labeled'], expected_labeled)
    # The other beta, the teacher's class instead of the student's, or no
    # sampling would have kept other pixels.
    other_beta = ((1 - confidence.double()) / (1 - confidence.double()).max())**(3.0 - beta)
    mistakes = {
        'other beta': loss_with_draw(states[0], ref.mixed_logits, ref.pseudo, ref.conf,
                                     rates=other_beta)[0],
        'teacher class': loss_with_draw(states[0], ref.mixed_logits, ref.pseudo, ref.conf,
                                        by=ref.pseudo)[0],
        'all kept': reference_loss(ref.mixed_logits, ref.pseudo, ref.conf,
                                   torch.zeros(NUM_CLASSES))[0],
    }
    for name, value in mistakes.items():
        assert not close(losses['unsup.loss_ael'], value, rtol=1e-4), name
