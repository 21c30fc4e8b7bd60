import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ael_mmseg.models.losses import ProbOhemCrossEntropyLoss

IGNORE = 255


def original_ohem(pred, target, thresh, min_kept, ignore=IGNORE):
    """The original code's ProbOhemCrossEntropy2d, written out with its Python branches."""
    b, c, h, w = pred.size()
    target = target.reshape(-1).clone()
    valid_mask = target.ne(ignore)
    target = target * valid_mask.long()
    num_valid = int(valid_mask.sum())
    prob = F.softmax(pred, dim=1).transpose(0, 1).reshape(c, -1)
    if min_kept > num_valid:
        pass
    elif num_valid > 0:
        prob = prob.masked_fill(~valid_mask, 1)
        mask_prob = prob[target, torch.arange(len(target), dtype=torch.long)]
        threshold = thresh
        if min_kept > 0:
            _, index = mask_prob.sort()
            threshold_index = index[min(len(index), min_kept) - 1]
            if mask_prob[threshold_index] > thresh:
                threshold = mask_prob[threshold_index]
        kept_mask = mask_prob.le(threshold)
        target = target * kept_mask.long()
        valid_mask = valid_mask * kept_mask
    target = target.masked_fill(~valid_mask, ignore).reshape(b, h, w)
    return F.cross_entropy(pred, target, ignore_index=ignore)


def _batch(seed, num_classes=5, size=12, ignore_fraction=0.2, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, size, size, generator=gen) * scale
    label = torch.randint(0, num_classes, (2, size, size), generator=gen)
    label[torch.rand(label.shape, generator=gen) < ignore_fraction] = IGNORE
    return logits, label


@pytest.mark.parametrize('thresh,min_kept', [(0.7, 0), (0.7, 10), (0.7, 150), (0.2, 200),
                                             (0.7, 100000), (1.0, 50)])
@pytest.mark.parametrize('seed', [0, 1])
def test_matches_the_original_code(thresh, min_kept, seed):
    logits, label = _batch(seed)
    ours = ProbOhemCrossEntropyLoss(thresh=thresh, min_kept=min_kept)(logits, label)
    ref = original_ohem(logits, label, thresh, min_kept)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_min_kept_above_the_threshold_keeps_the_hardest_pixels():
    logits, label = _batch(3)
    loss = ProbOhemCrossEntropyLoss(thresh=0.0, min_kept=40)
    kept = loss.kept_mask(logits, label, IGNORE)
    assert int(kept.sum()) == 40  # continuous probabilities: no ties
    prob = F.softmax(logits, 1).gather(1, label.clamp(max=4)[:, None])[:, 0]
    valid = label != IGNORE
    assert prob[kept].max() < prob[valid & ~kept].min()


def test_loss_is_the_mean_over_kept_pixels_not_over_all_pixels():
    """Adding easy pixels must not dilute the gradient of a hard one (unlike
    mmseg's OHEMPixelSampler + CrossEntropyLoss, which divide by every pixel)."""
    loss_fn = ProbOhemCrossEntropyLoss(thresh=0.7, min_kept=0)

    def hard_pixel_grad(num_easy):
        logits = torch.zeros(1, 3, 1, 1 + num_easy)
        logits[0, 0, 0, 1:] = 10.0  # easy pixels: class 0, p ~ 1
        logits.requires_grad_(True)
        label = torch.zeros(1, 1, 1 + num_easy, dtype=torch.long)
        label[0, 0, 0] = 2  # one hard pixel, p = 1/3
        loss_fn(logits, label).backward()
        return logits.grad[0, :, 0, 0].clone()

    torch.testing.assert_close(hard_pixel_grad(1), hard_pixel_grad(1000))
    g = hard_pixel_grad(5)
    torch.testing.assert_close(g, torch.tensor([1 / 3, 1 / 3, -2 / 3]))


def test_no_labeled_pixel_gives_zero_not_nan():
    logits = torch.randn(1, 4, 5, 5, requires_grad=True)
    label = torch.full((1, 5, 5), IGNORE, dtype=torch.long)
    loss = ProbOhemCrossEntropyLoss(min_kept=10)(logits, label)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_loss_weight_and_name():
    logits, label = _batch(4)
    base = ProbOhemCrossEntropyLoss(min_kept=30)(logits, label)
    weighted = ProbOhemCrossEntropyLoss(min_kept=30, loss_weight=0.4, loss_name='loss_aux')
    torch.testing.assert_close(weighted(logits, label), 0.4 * base)
    assert weighted.loss_name == 'loss_aux'


def test_bad_settings_and_inputs_are_named():
    with pytest.raises(ValueError, match='thresh'):
        ProbOhemCrossEntropyLoss(thresh=1.5)
    with pytest.raises(ValueError, match='min_kept'):
        ProbOhemCrossEntropyLoss(min_kept=-1)
    with pytest.raises(ValueError, match='loss_name'):
        ProbOhemCrossEntropyLoss(loss_name='ohem')
    logits, label = _batch(5)
    with pytest.raises(ValueError, match='sampler'):
        ProbOhemCrossEntropyLoss()(logits, label, weight=torch.ones_like(label).float())
    with pytest.raises(ValueError, match='differ in size'):
        ProbOhemCrossEntropyLoss()(logits, label[:, :6, :6])


def test_as_a_stock_decode_head_loss():
    """FCNHead resizes its logits to the labels and logs `loss_ce`, as with CE."""
    init_default_scope('mmseg')
    head = MODELS.build(
        dict(type='FCNHead', in_channels=8, channels=8, num_convs=1, num_classes=4,
             loss_decode=dict(type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=20)))
    feats = [torch.randn(2, 8, 4, 4)]
    samples = []
    for i in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, 16, 16)))
        sample.set_metainfo(dict(img_shape=(16, 16), pad_shape=(16, 16)))
        samples.append(sample)
    losses = head.loss(feats, samples, train_cfg=dict())
    assert set(losses) == {'loss_ce', 'acc_seg'}
    assert torch.isfinite(losses['loss_ce']) and losses['loss_ce'] > 0


def test_non_finite_logits_give_a_non_finite_loss():
    """NaN must not be selected away (a silent zero loss would hide it)."""
    logits, label = _batch(6)
    logits[0, :, 3, 3] = float('nan')
    label[0, 3, 3] = 1
    assert torch.isnan(ProbOhemCrossEntropyLoss(min_kept=10)(logits, label))
