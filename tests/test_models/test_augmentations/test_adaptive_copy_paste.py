import math

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from ael_mmseg.models.augmentations.adaptive_copy_paste import AdaptiveCopyPaste
from ael_mmseg.models.utils import acp_class_probabilities

C = 6


def _batch(n=8, h=12, w=10, seed=0, ignore_frac=0.1):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, h, w, generator=g)
    labels = torch.randint(0, C, (n, h, w), generator=g)
    paste_images = torch.randn(n, 3, h, w, generator=g)
    paste_labels = torch.randint(0, C, (n, h, w), generator=g)
    ignore = torch.rand(n, h, w, generator=g) < ignore_frac
    paste_labels[ignore] = 255
    return images, labels, paste_images, paste_labels


def _reference_probs(conf, excluded):
    conf = np.asarray(conf, dtype=np.float64)
    allowed = np.array([c not in excluded for c in range(len(conf))])
    e = np.exp(np.sqrt(1.0 - conf)) * allowed
    return e / e.sum()


def test_class_probabilities_match_formula():
    excluded = (0, 2)
    acp = AdaptiveCopyPaste(C, num_sampled_classes=2, excluded_classes=excluded)
    conf = torch.rand(C, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    probs = acp_class_probabilities(conf, acp.allowed_mask)
    assert probs.dtype == torch.float32 and probs.shape == (C, )
    np.testing.assert_allclose(probs.numpy(), _reference_probs(conf.numpy(), excluded),
                               rtol=1e-6, atol=1e-7)
    assert probs[0] == 0 and probs[2] == 0
    assert math.isclose(probs.sum().item(), 1.0, rel_tol=1e-6)
    # half-precision bank: still float32 probabilities
    assert acp_class_probabilities(conf.half(), acp.allowed_mask).dtype == torch.float32


def test_class_probabilities_no_nan_above_one():
    acp = AdaptiveCopyPaste(3, num_sampled_classes=1)
    probs = acp_class_probabilities(torch.tensor([1.0 + 1e-6, 0.5, 0.0]), acp.allowed_mask)
    assert torch.isfinite(probs).all()
    np.testing.assert_allclose(probs.numpy(), _reference_probs([1.0, 0.5, 0.0], ()), rtol=1e-6)


def test_sample_classes_sets():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=3, excluded_classes=(1, 4))
    conf = torch.full((C, ), 0.5)
    chosen = acp.sample_classes(conf, 500, generator=torch.Generator().manual_seed(0))
    assert chosen.shape == (500, C) and chosen.dtype == torch.bool
    per_image = chosen.sum(1)
    assert per_image.min() >= 1 and per_image.max() <= 3
    assert not chosen[:, [1, 4]].any()
    # per-image sampling (the original drew one set per batch): sets differ
    assert len({tuple(row.tolist()) for row in chosen}) > 1


def _reference_paste(images, labels, paste_images, paste_labels, chosen, do_paste):
    images, labels = images.numpy().copy(), labels.numpy().copy()
    mask = np.zeros(labels.shape, dtype=bool)
    for n in range(images.shape[0]):
        if not do_paste[n]:
            continue
        classes = np.flatnonzero(chosen[n].numpy())
        mask[n] = np.isin(paste_labels[n].numpy(), classes)
        images[n][:, mask[n]] = paste_images[n].numpy()[:, mask[n]]
        labels[n][mask[n]] = paste_labels[n].numpy()[mask[n]]
    return images, labels, mask


@pytest.mark.parametrize('excluded', [(), (0, 3)])
def test_forward_pastes_exactly_the_sampled_classes(excluded):
    acp = AdaptiveCopyPaste(C, num_sampled_classes=2, prob=0.5, excluded_classes=excluded)
    images, labels, paste_images, paste_labels = _batch(n=16)
    conf = torch.rand(C, generator=torch.Generator().manual_seed(3))
    inputs = [t.clone() for t in (images, labels, paste_images, paste_labels)]

    out_images, out_labels, mask = acp(images, labels, paste_images, paste_labels, conf,
                                       generator=torch.Generator().manual_seed(7))

    # documented RNG order: class draws, then the per-image Bernoulli
    g = torch.Generator().manual_seed(7)
    chosen = acp.sample_classes(conf, 16, generator=g)
    do_paste = torch.rand(16, generator=g) < 0.5
    assert 0 < do_paste.sum() < 16  # the seed exercises both branches
    ref_images, ref_labels, ref_mask = _reference_paste(images, labels, paste_images,
                                                        paste_labels, chosen, do_paste)
    np.testing.assert_array_equal(mask.numpy(), ref_mask)
    np.testing.assert_array_equal(out_images.numpy(), ref_images)
    np.testing.assert_array_equal(out_labels.numpy(), ref_labels)
    assert out_labels.dtype == labels.dtype and mask.dtype == torch.bool
    # inputs untouched
    for before, after in zip(inputs, (images, labels, paste_images, paste_labels)):
        assert torch.equal(before, after)


def test_forward_mask_consistent_with_changes():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=3, prob=1.0)
    images, labels, paste_images, paste_labels = _batch(n=6, seed=5)
    out_images, out_labels, mask = acp(images, labels, paste_images, paste_labels,
                                       torch.rand(C), generator=torch.Generator().manual_seed(2))
    # image and label both come from the paste source exactly inside the mask
    m3 = mask.unsqueeze(1).expand_as(images)
    assert torch.equal(out_images[m3], paste_images[m3])
    assert torch.equal(out_images[~m3], images[~m3])
    assert torch.equal(out_labels[mask], paste_labels[mask])
    assert torch.equal(out_labels[~mask], labels[~mask])
    # ignore pixels of the paste label are never pasted
    assert not (mask & (paste_labels == 255)).any()
    # within an image, the mask is a union of whole classes of the paste label
    for n in range(6):
        pasted = set(paste_labels[n][mask[n]].tolist())
        assert torch.equal(mask[n], torch.isin(paste_labels[n], torch.tensor(sorted(pasted))))


def test_integer_label_dtypes():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=3, prob=1.0)
    images, labels, paste_images, paste_labels = _batch(n=4)
    conf = torch.rand(C, generator=torch.Generator().manual_seed(0))
    ref = acp(images, labels, paste_images, paste_labels, conf,
              generator=torch.Generator().manual_seed(1))
    out = acp(images, labels.to(torch.uint8), paste_images, paste_labels.to(torch.uint8), conf,
              generator=torch.Generator().manual_seed(1))
    assert out[1].dtype == torch.uint8
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1].long(), ref[1])
    assert torch.equal(out[2], ref[2]) and out[2].any()


def test_prob_zero_changes_nothing():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=3, prob=0.0)
    images, labels, paste_images, paste_labels = _batch()
    out_images, out_labels, mask = acp(images, labels, paste_images, paste_labels,
                                       torch.rand(C))
    assert not mask.any()
    assert torch.equal(out_images, images) and torch.equal(out_labels, labels)


def test_prob_one_pastes_every_image():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=1, prob=1.0)
    images, labels, paste_images, paste_labels = _batch(n=32, h=16, w=16, ignore_frac=0.0)
    # every paste label contains every class, so a pasted image always has mask pixels
    paste_labels[:, 0, :C] = torch.arange(C)
    _, _, mask = acp(images, labels, paste_images, paste_labels, torch.rand(C),
                     generator=torch.Generator().manual_seed(0))
    assert mask.flatten(1).any(1).all()


def test_sampling_rates_follow_formula():
    excluded = (0, 5)
    conf = torch.tensor([0.05, 0.9, 0.85, 0.15, 0.95, 0.1])  # class 3: low, allowed
    k, n = 3, 40000
    acp = AdaptiveCopyPaste(C, num_sampled_classes=k, excluded_classes=excluded)
    chosen = acp.sample_classes(conf, n, generator=torch.Generator().manual_seed(123))
    rates = chosen.double().mean(0).numpy()
    p = _reference_probs(conf.numpy(), excluded)
    expected = 1.0 - (1.0 - p)**k
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(rates - expected) <= 5 * sigma + 1e-12), (rates, expected)
    assert rates[3] == rates.max()  # the low-confidence allowed class is the most pasted
    assert rates[0] == 0 and rates[5] == 0  # excluded despite low confidence


def test_single_draw_distribution_matches_probabilities():
    conf = torch.tensor([0.3, 0.6, 0.9, 0.99, 0.0, 0.5])
    n = 40000
    acp = AdaptiveCopyPaste(C, num_sampled_classes=1, excluded_classes=(2, ))
    chosen = acp.sample_classes(conf, n, generator=torch.Generator().manual_seed(9))
    assert torch.equal(chosen.sum(1), torch.ones(n, dtype=torch.long))
    p = _reference_probs(conf.numpy(), (2, ))
    freq = chosen.double().mean(0).numpy()
    sigma = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 5 * sigma + 1e-12), (freq, p)


def test_build_from_registry():
    acp = MODELS.build(
        dict(type='AdaptiveCopyPaste', num_classes=19, num_sampled_classes=3,
             excluded_classes=[0, 1, 2, 8, 10]))
    assert isinstance(acp, AdaptiveCopyPaste)
    assert acp.excluded_classes == (0, 1, 2, 8, 10)
    assert 'allowed_mask' not in acp.state_dict()


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=0), 'num_classes'),
    (dict(num_classes=5, num_sampled_classes=0), r'num_sampled_classes \(K=0\)'),
    (dict(num_classes=5, num_sampled_classes=4, excluded_classes=(0, 1)),
     r'K=4.*\[1, 3\].*allowed'),
    (dict(num_classes=5, prob=1.5), 'prob'),
    (dict(num_classes=5, prob=-0.1), 'prob'),
    (dict(num_classes=5, num_sampled_classes=1, excluded_classes=(5, )),
     'excluded_classes contains 5'),
    (dict(num_classes=5, num_sampled_classes=1, excluded_classes=(-1, )),
     'excluded_classes contains -1'),
    (dict(num_classes=5, ignore_index=None), 'ignore_index'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveCopyPaste(**kwargs)


def test_bad_inputs():
    acp = AdaptiveCopyPaste(C, num_sampled_classes=2)
    images, labels, paste_images, paste_labels = _batch(n=2)
    conf = torch.rand(C)
    with pytest.raises(ValueError, match='confidence'):
        acp(images, labels, paste_images, paste_labels, torch.rand(C + 1))
    with pytest.raises(ValueError, match='confidence'):
        acp_class_probabilities(torch.arange(C))
    with pytest.raises(ValueError, match='paste_images'):
        acp(images, labels, paste_images[:, :, :-1], paste_labels, conf)
    with pytest.raises(ValueError, match='paste_labels'):
        acp(images, labels, paste_images, paste_labels[:1], conf)
    with pytest.raises(ValueError, match='labels must be an integer'):
        acp(images, labels.float(), paste_images, paste_labels, conf)
    with pytest.raises(ValueError, match='images must be'):
        acp(images[0], labels, paste_images, paste_labels, conf)
    with pytest.raises(ValueError, match='num_images'):
        acp.sample_classes(conf, -1)
