"""Tests of AELWeightedCELoss against references computed here with naive loops."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from ael_mmseg.models.losses import AELWeightedCELoss
from ael_mmseg.models.utils import aes_sampling_rates

IGNORE = 255


def _inputs(n=2, c=4, h=3, w=5, seed=0, ignore_frac=0.2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 2
    label = torch.randint(0, c, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = IGNORE
    conf = torch.rand(n, h, w, generator=g)
    return logits, label, conf


def _naive_loss(logits, label, conf, gamma, kept=None):
    """sum(w * ce) / sum(w) over kept, non-ignored pixels, one pixel at a time."""
    n, c, h, w = logits.shape
    logits, label, conf = logits.tolist(), label.tolist(), conf.tolist()
    kept = kept.tolist() if kept is not None else None
    num = den = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = label[i][y][x]
                if t == IGNORE or (kept is not None and not kept[i][y][x]):
                    continue
                z = [logits[i][k][y][x] for k in range(c)]
                m = max(z)
                ce = m + math.log(sum(math.exp(v - m) for v in z)) - z[t]
                wt = conf[i][y][x]**gamma
                num += wt * ce
                den += wt
    return num / den if den > 0 else 0.0


def _kept_pixels(loss_fn, logits, label, conf, rates):
    """Pixels that entered the loss: exactly those with a nonzero logit gradient."""
    logits = logits.clone().requires_grad_(True)
    loss = loss_fn(logits, label, conf, rates)
    loss.backward()
    return loss.detach(), logits.grad.abs().sum(dim=1) > 0


def _predicted_class_inputs(n, c, h, w, seed):
    """Logits whose argmax is a known class map; pseudo-labels always disagree."""
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, c, (n, h, w), generator=g)
    logits = F.one_hot(pred, c).permute(0, 3, 1, 2).float() * 3.0
    label = (pred + 1) % c  # nonzero CE gradient on every pixel
    conf = torch.rand(n, h, w, generator=g) * 0.5 + 0.5
    return logits, label, conf, pred


def test_registered_and_loss_name():
    loss_fn = MODELS.build(dict(type='AELWeightedCELoss', gamma=1.0, loss_name='loss_u'))
    assert isinstance(loss_fn, AELWeightedCELoss)
    assert loss_fn.loss_name == 'loss_u'
    assert AELWeightedCELoss().loss_name == 'loss_ael'


def test_gamma_zero_no_sampling_is_mean_ce():
    logits, label, conf = _inputs()
    expected = F.cross_entropy(logits, label, ignore_index=IGNORE)
    loss = AELWeightedCELoss(gamma=0.0)(logits, label, conf)
    torch.testing.assert_close(loss, expected)
    # DR switched off gives plain mean CE whatever gamma is.
    loss = AELWeightedCELoss(gamma=2.0, use_dynamic_reweighting=False)(logits, label, conf)
    torch.testing.assert_close(loss, expected)


def test_loss_weight_scales():
    logits, label, conf = _inputs()
    base = AELWeightedCELoss()(logits, label, conf)
    torch.testing.assert_close(AELWeightedCELoss(loss_weight=0.25)(logits, label, conf),
                               0.25 * base)


def test_ignored_pixels_contribute_nothing():
    logits, label, conf = _inputs(ignore_frac=0.4)
    ignored = label == IGNORE
    assert ignored.any() and (~ignored).any()
    loss_fn = AELWeightedCELoss(gamma=2.0)
    loss = loss_fn(logits, label, conf)
    logits2 = logits.clone()
    logits2.permute(0, 2, 3, 1)[ignored] = 100.0 * torch.randn(int(ignored.sum()), 4)
    conf2 = torch.where(ignored, torch.ones_like(conf), conf)
    torch.testing.assert_close(loss_fn(logits2, label, conf2), loss)


def test_dynamic_reweighting_matches_naive_loop():
    logits, label, conf = _inputs(seed=3)
    loss = AELWeightedCELoss(gamma=2.0)(logits, label, conf)
    expected = _naive_loss(logits.double(), label, conf.double(), gamma=2.0)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # And weighting does change the value here (the test would notice DR breaking).
    assert abs(expected - _naive_loss(logits.double(), label, conf.double(), 0.0)) > 1e-3


def test_equalization_rates_formula():
    conf = torch.tensor([0.9, 0.95, 0.3, 0.8, 1.0])
    for beta in (1.0, 0.5, 2.0):
        rates = aes_sampling_rates(conf, beta)
        unc = [1 - float(v) for v in conf]
        expected = torch.tensor([(u / max(unc))**beta for u in unc])
        torch.testing.assert_close(rates, expected)
        assert rates.dtype == torch.float32
    # the least confident class is always kept, a fully confident one never
    assert rates[2].item() == 1.0 and rates[4].item() == 0.0


def test_equalization_rates_all_equal_and_range():
    for value in (0.0, 0.4, 1.0):  # 1.0: max(1 - Conf) = 0 must not give NaN
        rates = aes_sampling_rates(torch.full((6, ), value), 1.0)
        torch.testing.assert_close(rates, torch.ones(6))
    conf = torch.rand(19, generator=torch.Generator().manual_seed(1))
    for beta in (0.0, 0.5, 1.0, 3.0):
        rates = aes_sampling_rates(conf, beta)
        assert torch.isfinite(rates).all()
        assert ((rates >= 0) & (rates <= 1)).all()
        assert rates.max().item() == 1.0
    torch.testing.assert_close(aes_sampling_rates(conf, 0.0),
                               torch.ones(19))


def test_sampling_keeps_each_predicted_class_at_its_rate(seed=0):
    rates = torch.tensor([1.0, 0.5, 0.2, 0.0, 0.8])
    logits, label, conf, pred = _predicted_class_inputs(2, 5, 100, 100, seed=seed)
    loss_fn = AELWeightedCELoss(gamma=2.0)
    kept_sum = torch.zeros(5)
    count = torch.stack([(pred == k).sum() for k in range(5)]).float()
    draws = 8
    for d in range(draws):
        torch.manual_seed(1000 * seed + d)
        _, kept = _kept_pixels(loss_fn, logits, label, conf, rates)
        kept_sum += torch.stack([kept[pred == k].sum() for k in range(5)]).float()
    frac = kept_sum / (count * draws)
    # ~4k pixels per class and draw, 8 draws: the standard error is <= 0.003.
    for k in range(5):
        assert abs(frac[k].item() - rates[k].item()) <= 0.02, (k, frac.tolist())
    assert frac[0].item() == 1.0 and frac[3].item() == 0.0


def test_sampled_loss_is_weighted_ce_over_kept_pixels():
    logits, label, conf = _inputs(n=2, c=4, h=16, w=16, seed=6)
    rates = torch.tensor([1.0, 0.5, 0.25, 0.75])
    torch.manual_seed(3)
    loss, kept = _kept_pixels(AELWeightedCELoss(gamma=2.0), logits, label, conf, rates)
    valid = label != IGNORE
    assert 0 < int((kept & valid).sum()) < int(valid.sum())  # some pixels were dropped
    expected = _naive_loss(logits.double(), label, conf.double(), 2.0, kept)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_sampling_is_reproducible_with_seed():
    rates = torch.tensor([0.3, 0.6, 0.9, 0.1])
    logits, label, conf, _ = _predicted_class_inputs(1, 4, 32, 32, seed=5)
    loss_fn = AELWeightedCELoss()
    torch.manual_seed(7)
    a = loss_fn(logits, label, conf, rates)
    torch.manual_seed(7)
    b = loss_fn(logits, label, conf, rates)
    torch.manual_seed(8)
    c = loss_fn(logits, label, conf, rates)
    assert a.item() == b.item() and a.item() != c.item()


def test_low_confidence_class_kept_more_than_confident_ones():
    bank = torch.tensor([0.95, 0.9, 0.3, 0.8])  # class 2 is the one the model is bad at
    beta = 0.5
    rates = aes_sampling_rates(bank, beta)
    unc = [1 - float(v) for v in bank]
    expected = [(u / max(unc))**beta for u in unc]
    logits, label, conf, pred = _predicted_class_inputs(2, 4, 100, 100, seed=2)
    loss_fn = AELWeightedCELoss(beta=beta)
    torch.manual_seed(11)
    _, kept = _kept_pixels(loss_fn, logits, label, conf, rates)
    frac = [kept[pred == k].float().mean().item() for k in range(4)]
    assert frac[2] == 1.0
    for k in (0, 1, 3):
        assert abs(frac[k] - expected[k]) <= 0.03, (k, frac, expected)


def test_sampling_off_or_no_rates_keeps_everything():
    logits, label, conf = _inputs(seed=4)
    rates = torch.zeros(4)  # would drop every pixel if it were used
    full = AELWeightedCELoss()(logits, label, conf)
    torch.testing.assert_close(
        AELWeightedCELoss(use_equalization_sampling=False)(logits, label, conf, rates), full)
    torch.testing.assert_close(AELWeightedCELoss()(logits, label, conf, None), full)


def test_empty_selection_gives_zero_and_zero_gradient():
    logits, label, conf = _inputs()
    loss_fn = AELWeightedCELoss()
    cases = [
        (torch.full_like(label, IGNORE), conf, None),  # everything ignored
        (label, conf, torch.zeros(4)),  # every pixel dropped by AES
        (label, torch.zeros_like(conf), None),  # all weights 0
    ]
    for lbl, cf, rates in cases:
        x = logits.clone().requires_grad_(True)
        loss = loss_fn(x, lbl, cf, rates)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(x.grad, torch.zeros_like(x))


def test_gradients_flow_to_logits_only():
    logits, label, conf = _inputs()
    logits.requires_grad_(True)
    conf.requires_grad_(True)
    loss = AELWeightedCELoss()(logits, label, conf, torch.tensor([1.0, 0.7, 0.4, 1.0]))
    loss.backward()
    assert conf.grad is None
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_autocast_bf16_returns_float32_close_to_fp32():
    torch.manual_seed(0)
    head = torch.nn.Conv2d(8, 6, 1)
    feats = torch.randn(2, 8, 16, 16)
    label = torch.randint(0, 6, (2, 16, 16))
    label[:, :2] = IGNORE
    conf = torch.rand(2, 16, 16)
    loss_fn = AELWeightedCELoss(gamma=2.0)
    ref = loss_fn(head(feats), label, conf)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = head(feats)
        assert logits.dtype == torch.bfloat16
        loss = loss_fn(logits, label, conf)
        sampled = loss_fn(logits, label, conf, torch.full((6, ), 0.5))
    assert loss.dtype == torch.float32 and sampled.dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-2)
    assert torch.isfinite(sampled)
    # half-precision logits outside autocast are upcast, not computed in bf16
    bf16 = head(feats).detach().bfloat16()
    torch.testing.assert_close(loss_fn(bf16, label, conf), loss_fn(bf16.float(), label, conf))


@pytest.mark.parametrize('kwargs,name', [
    (dict(gamma=-1.0), 'gamma'),
    (dict(gamma=float('nan')), 'gamma'),
    (dict(beta=-0.5), 'beta'),
    (dict(loss_weight=float('inf')), 'loss_weight'),
])
def test_bad_constructor_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AELWeightedCELoss(**kwargs)


def test_bad_rates_args():
    with pytest.raises(ValueError, match='beta'):
        aes_sampling_rates(torch.rand(4), -1.0)
    with pytest.raises(ValueError, match='confidence'):
        aes_sampling_rates(torch.rand(2, 4), 1.0)


def test_bad_forward_args():
    logits, label, conf = _inputs(n=2, c=4, h=3, w=5)
    loss_fn = AELWeightedCELoss()
    cases = [
        ((logits[0], label, conf), 'seg_logits'),
        ((logits, label.float(), conf), 'pseudo_label'),
        ((logits, label[:1], conf[:1]), 'pseudo_label'),
        ((F.interpolate(logits, size=(6, 10)), label, conf), 'spatial'),
        ((logits, label, conf[:, :2]), 'teacher_confidence'),
        ((logits, label, conf, torch.ones(5)), 'sampling_rates'),
        ((logits, label, conf, torch.ones(1, 4)), 'sampling_rates'),
    ]
    for args, name in cases:
        with pytest.raises(ValueError, match=name):
            loss_fn(*args)
