import math

import cv2
import numpy as np
import pytest
import torch
from mmseg.registry import MODELS
from torch import nn

from ael_mmseg.models.augmentations import CutMix
from ael_mmseg.models.augmentations.adaptive_cutmix import AdaptiveCutMix
from ael_mmseg.models.utils import acm_class_probabilities

NUM_CLASSES = 5


def _pairs(source_pred: torch.Tensor, seed: int = 0, dtype=torch.float32):
    """Random targets/sources around a given source prediction: (P, ...) tensors."""
    gen = torch.Generator().manual_seed(seed)
    num, height, width = source_pred.shape
    return dict(
        target_images=torch.rand(num, 3, height, width, generator=gen).to(dtype),
        source_images=torch.rand(num, 3, height, width, generator=gen).to(dtype) + 2,
        target_pred=torch.randint(NUM_CLASSES, (num, height, width), generator=gen),
        source_pred=source_pred,
        target_conf=torch.rand(num, height, width, generator=gen),
        source_conf=torch.rand(num, height, width, generator=gen) + 2)


def _box_of(mask: torch.Tensor):
    """(y0, x0, y1, x1), end-exclusive, of the True pixels of a (H, W) mask."""
    ys, xs = np.nonzero(mask.numpy())
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _cv2_boxes(binary: np.ndarray):
    """cv2 (y0, x0, y1, x1) and area of every 8-connected component."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    return [((y, x, y + h, x + w), area) for x, y, w, h, area in stats[1:]]


def test_registered():
    acm = MODELS.build(dict(type='AdaptiveCutMix', num_classes=3))
    assert isinstance(acm, AdaptiveCutMix) and acm.presence.shape == (3, 0)


# ---------------------------------------------------------------- presence
def test_compute_presence_matches_naive_loop_at_the_threshold():
    acm = AdaptiveCutMix(NUM_CLASSES, presence_area_thresh=0.07)
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(NUM_CLASSES, (3, 10, 10), generator=gen)
    pred[0] = 0
    pred[0].view(-1)[:7] = 1  # exactly 7 / 100 = the threshold: present
    pred[0].view(-1)[7:13] = 2  # 6 / 100, just below: absent
    pred[0].view(-1)[13:20] = 255  # 7 ignored pixels: never a class
    pred[1].view(-1)[:30] = 255
    expected = torch.zeros(3, NUM_CLASSES, dtype=torch.bool)
    for n in range(3):
        for c in range(NUM_CLASSES):
            expected[n, c] = (pred[n] == c).sum().item() / 100 >= 0.07
    assert expected[0, 1] and not expected[0, 2]
    assert torch.equal(acm.compute_presence(pred), expected)


def test_compute_presence_rejects_unknown_label_on_cpu():
    acm = AdaptiveCutMix(NUM_CLASSES)
    pred = torch.zeros(1, 4, 4, dtype=torch.long)
    pred[0, 0, 0] = NUM_CLASSES
    with pytest.raises(ValueError, match='teacher_pred'):
        acm.compute_presence(pred)
    with pytest.raises(ValueError, match='teacher_pred'):
        acm.compute_presence(torch.zeros(1, 4, 4))


def test_write_presence_updates_only_given_columns():
    acm = AdaptiveCutMix(NUM_CLASSES)
    acm.resize_presence(6)
    gen = torch.Generator().manual_seed(1)
    before = torch.rand(NUM_CLASSES, 6, generator=gen) < 0.5
    acm.presence.copy_(before)
    rows = torch.rand(2, NUM_CLASSES, generator=gen) < 0.5
    acm.write_presence(torch.tensor([4, 1]), rows)
    expected = before.clone()
    expected[:, 4] = rows[0]
    expected[:, 1] = rows[1]
    assert torch.equal(acm.presence, expected)


def test_write_presence_merges_repeated_indices_whatever_their_order():
    """Crops of one image in one step: the column is the OR of their rows, in any order."""
    gen = torch.Generator().manual_seed(2)
    idx = torch.tensor([3, 1, 3, 5, 3, 1])
    rows = torch.rand(6, NUM_CLASSES, generator=gen) < 0.4
    before = torch.rand(NUM_CLASSES, 6, generator=gen) < 0.5
    expected = before.clone()
    for image in (1, 3, 5):
        expected[:, image] = rows[idx == image].any(0)
    tables = []
    for order in (torch.arange(6), torch.arange(6).flip(0), torch.randperm(6, generator=gen)):
        acm = AdaptiveCutMix(NUM_CLASSES)
        acm.resize_presence(6)
        acm.presence.copy_(before)
        written = acm.write_presence(idx[order], rows[order])
        tables.append(acm.presence.clone())
        # what it returns (for a host mirror) is what it wrote
        assert torch.equal(written, expected[:, idx[order]].t())
    assert all(torch.equal(table, expected) for table in tables)


@pytest.mark.parametrize('idx, rows, match', [
    (torch.tensor([6]), torch.zeros(1, NUM_CLASSES, dtype=torch.bool), 'sample_idx'),
    (torch.tensor([-1]), torch.zeros(1, NUM_CLASSES, dtype=torch.bool), 'sample_idx'),
    (torch.tensor([0]), torch.zeros(1, NUM_CLASSES + 1, dtype=torch.bool), 'presence'),
    (torch.tensor([0]), torch.zeros(1, NUM_CLASSES), 'presence'),
])
def test_write_presence_rejects_bad_input(idx, rows, match):
    acm = AdaptiveCutMix(NUM_CLASSES)
    acm.resize_presence(6)
    with pytest.raises(ValueError, match=match):
        acm.write_presence(idx, rows)


def test_resize_and_state_dict_round_trip_with_another_size():
    saved = nn.Sequential(AdaptiveCutMix(NUM_CLASSES))
    saved[0].resize_presence(7)
    table = torch.rand(NUM_CLASSES, 7, generator=torch.Generator().manual_seed(2)) < 0.5
    saved[0].presence.copy_(table)
    loaded = nn.Sequential(AdaptiveCutMix(NUM_CLASSES))
    loaded[0].resize_presence(3)
    loaded[0].presence.fill_(True)
    loaded.load_state_dict(saved.state_dict())
    assert torch.equal(loaded[0].presence, table)
    loaded[0].resize_presence(4)
    assert loaded[0].presence.shape == (NUM_CLASSES, 4) and not loaded[0].presence.any()


# ---------------------------------------------------------------- sampling
def test_class_probabilities_are_softmax_of_one_minus_conf():
    conf = torch.tensor([0.9, 0.2, 0.5, 1.0], dtype=torch.float16)
    weights = [math.exp(1 - c) for c in conf.tolist()]
    expected = torch.tensor([w / sum(weights) for w in weights])
    probs = acm_class_probabilities(conf)
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs, expected)


# ---------------------------------------------------------------- boxes
def _two_blobs_and_a_speck():
    """(1, 40, 48) prediction: class 3 as an L-shape, a diagonal and a 4-pixel speck."""
    pred = torch.zeros(1, 40, 48, dtype=torch.long)
    pred[0, 2:20, 3:7] = 3  # L-shape, area 18*4 + 5*10 = 122
    pred[0, 15:20, 7:17] = 3
    for k in range(12):  # 8-connected diagonal band, 2 px thick: area 24
        pred[0, 22 + k, 30 + k:32 + k] = 3
    pred[0, 36:38, 2:4] = 3  # speck, area 4
    pred[0, 30:35, 10:20] = 1  # another class: never boxed
    return pred


def test_box_is_exact_bbox_of_a_qualifying_component():
    # 40 * 48 = 1920 px; 0.01 -> 19.2 px: the L and the diagonal qualify, the speck not.
    acm = AdaptiveCutMix(NUM_CLASSES, component_area_thresh=0.01)
    pred = _two_blobs_and_a_speck()
    comps = _cv2_boxes((pred[0] == 3).numpy())
    allowed = {box for box, area in comps if area >= 0.01 * 1920}
    assert len(allowed) == 2 and len(comps) == 3
    seen = set()
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        *_, box_mask = acm(**_pairs(pred, seed), classes=torch.tensor([3]), generator=gen)
        box = _box_of(box_mask[0])
        assert box in allowed
        assert box_mask[0].sum() == (box[2] - box[0]) * (box[3] - box[1])  # a full rectangle
        seen.add(box)
    assert seen == allowed  # uniform choice reaches both


def test_box_lies_around_component_of_the_sampled_class():
    acm = AdaptiveCutMix(NUM_CLASSES, component_area_thresh=0.001)
    gen = torch.Generator().manual_seed(6)
    pred = torch.randint(NUM_CLASSES, (2, 24, 24), generator=gen)
    pred[:, 5:15, 8:20] = 4
    *_, box_mask = acm(**_pairs(pred), classes=torch.tensor([4, 2]), generator=gen)
    for n, cls in enumerate([4, 2]):
        labels = cv2.connectedComponents((pred[n] == cls).numpy().astype(np.uint8),
                                         connectivity=8)[1]
        inside = np.unique(labels[box_mask[n].numpy()])
        # Some component of the class lies entirely inside the box, touching its edges.
        whole = [lab for lab in inside if lab > 0 and box_mask[n].numpy()[labels == lab].all()]
        assert any(_box_of(torch.from_numpy(labels == lab)) == _box_of(box_mask[n])
                   for lab in whole)


def test_box_scales_back_from_downsampled_label_map():
    # 256 x 192 map, label map at most 64: factor 4; a block on multiples of 4 is exact.
    acm = AdaptiveCutMix(NUM_CLASSES, max_label_map_size=64)
    pred = torch.zeros(1, 256, 192, dtype=torch.long)
    pred[0, 40:104, 80:180] = 2
    *_, box_mask = acm(**_pairs(pred), classes=torch.tensor([2]))
    assert _box_of(box_mask[0]) == (40, 80, 104, 180)


@pytest.mark.parametrize('classes', [[-1, -1], [2, 3]])
def test_fallback_box_covers_half_the_image(classes):
    # Class 2 is absent; class 3 only as a speck below the component threshold.
    acm = AdaptiveCutMix(NUM_CLASSES, component_area_thresh=0.01)
    height, width = 48, 64
    pred = torch.zeros(2, height, width, dtype=torch.long)
    pred[1, 5:7, 5:7] = 3
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        *_, box_mask = acm(**_pairs(pred, seed), classes=torch.tensor(classes), generator=gen)
        for mask in box_mask:
            y0, x0, y1, x1 = _box_of(mask)
            assert mask.sum() == (y1 - y0) * (x1 - x0)
            # Rounding each side to whole pixels moves the area by < (H + W) / 2 + 1.
            assert abs(mask.sum().item() - 0.5 * height * width) < (height + width) / 2 + 1
            assert y1 - y0 >= 0.5 * height - 1 and x1 - x0 >= 0.5 * width - 1


def test_plain_cutmix_box_is_random_half_area_whatever_the_prediction():
    cutmix = CutMix()
    pred = torch.zeros(1, 32, 32, dtype=torch.long)
    pred[0, 4:8, 4:8] = 1  # a component that ACM could have chosen
    inputs = _pairs(pred)
    *_, box_mask = cutmix(**inputs, generator=torch.Generator().manual_seed(0))
    assert abs(box_mask.sum().item() - 512) < 33
    # Same generator state, same box as ACM's fallback for a pair without a class.
    acm = AdaptiveCutMix(NUM_CLASSES)
    gen = torch.Generator().manual_seed(0)
    boxes = cutmix.random_boxes(1, 32, 32, torch.device('cpu'), gen)
    y0, x0, y1, x1 = boxes[0].tolist()
    assert box_mask[0].sum().item() == (y1 - y0) * (x1 - x0)
    with pytest.raises(TypeError):
        cutmix(**inputs, classes=torch.tensor([1]))  # ACM's argument: AdaptiveCutMix only
    assert acm.area_ratio == cutmix.area_ratio == 0.5


def test_plain_cutmix_is_acms_classless_mix_without_the_component_draw():
    """The baseline's CutMix gives ACM's box for a pair without a class, drawing less.

    ACM (and, before the CutMixMeanTeacher class, the baseline as AdaptiveCutMix
    with adaptive=False) draws the component scores (P, h*w) before the random
    box even when no class was sampled; CutMix draws only the box. Skipping
    that one draw on ACM's side gives the same mix.
    """
    pred = torch.randint(NUM_CLASSES, (3, 40, 24), generator=torch.Generator().manual_seed(2))
    inputs = _pairs(pred, seed=5)
    acm_out = AdaptiveCutMix(NUM_CLASSES)(**inputs, classes=torch.full((3, ), -1),
                                          generator=torch.Generator().manual_seed(9))
    generator = torch.Generator().manual_seed(9)
    torch.rand(3, 40 * 24, generator=generator)  # ACM's unused component scores
    cutmix_out = CutMix()(**inputs, generator=generator)
    for acm_tensor, cutmix_tensor in zip(acm_out, cutmix_out):
        assert torch.equal(acm_tensor, cutmix_tensor)
    unskipped = CutMix()(**inputs, generator=torch.Generator().manual_seed(9))
    assert not torch.equal(unskipped[3], acm_out[3])  # the draw is what differs


# ---------------------------------------------------------------- mixing
def test_image_label_and_confidence_mixed_with_the_same_box():
    acm = AdaptiveCutMix(NUM_CLASSES)
    gen = torch.Generator().manual_seed(7)
    pred = torch.randint(NUM_CLASSES, (2, 20, 30), generator=gen)
    pred[0, 3:12, 4:25] = 1
    inputs = _pairs(pred)
    images, labels, conf, box_mask = acm(**inputs, classes=torch.tensor([1, -1]), generator=gen)
    for n in range(2):
        for y in range(20):
            for x in range(30):
                src = 'source' if box_mask[n, y, x] else 'target'
                assert torch.equal(images[n, :, y, x], inputs[f'{src}_images'][n, :, y, x])
                assert labels[n, y, x] == inputs[f'{src}_pred'][n, y, x]
                assert conf[n, y, x] == inputs[f'{src}_conf'][n, y, x]
    assert 0 < box_mask.sum() < box_mask.numel()


def test_bf16_images_with_two_pairs():
    acm = AdaptiveCutMix(NUM_CLASSES)
    pred = torch.zeros(2, 16, 16, dtype=torch.long)
    pred[0, 2:9, 3:10] = 4
    inputs = _pairs(pred, dtype=torch.bfloat16)
    images, labels, conf, box_mask = acm(**inputs, classes=torch.tensor([4, 0]),
                                         generator=torch.Generator().manual_seed(8))
    assert images.dtype == torch.bfloat16 and images.shape == (2, 3, 16, 16)
    assert labels.dtype == torch.long and conf.dtype == torch.float32
    assert not images.float().isnan().any() and not conf.isnan().any()
    assert _box_of(box_mask[0]) == (2, 3, 9, 10)
    assert box_mask[1].all()  # class 0 fills the source: its box is the whole image


@pytest.mark.parametrize('key, value, match', [
    ('source_images', torch.zeros(1, 3, 8, 9), 'source_images'),
    ('target_pred', torch.zeros(1, 8, 8), 'target_pred'),
    ('source_conf', torch.zeros(1, 8, 7), 'source_conf'),
    ('classes', torch.tensor([NUM_CLASSES]), 'classes'),
    ('classes', torch.tensor([-2]), 'classes'),
    ('classes', torch.tensor([0.0]), 'classes'),
])
def test_forward_rejects_bad_input(key, value, match):
    kwargs = dict(_pairs(torch.zeros(1, 8, 8, dtype=torch.long)), classes=torch.tensor([0]))
    kwargs[key] = value
    with pytest.raises(ValueError, match=match):
        AdaptiveCutMix(NUM_CLASSES)(**kwargs)


def test_training_step_parts_never_read_tensor_values():
    # On the meta device any host read (.item(), bool(), nonzero, mask indexing)
    # raises: finishing proves forward and the presence update are sync-free.
    acm = AdaptiveCutMix(NUM_CLASSES)
    acm.resize_presence(4)
    acm.to('meta')
    kwargs = {k: v.to('meta') for k, v in _pairs(torch.zeros(2, 12, 10, dtype=torch.long)).items()}
    outputs = acm(**kwargs, classes=torch.tensor([1, -1], device='meta'))
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 12, 10)] + [(2, 12, 10)] * 3
    presence = acm.compute_presence(kwargs['source_pred'])
    acm.write_presence(torch.tensor([0, 3], device='meta'), presence)
    assert presence.shape == (2, NUM_CLASSES)
