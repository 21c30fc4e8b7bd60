"""TwoRangeRandomResize: the original AEL code's scale jitter (RandResize)."""
import random

import numpy as np
import pytest

from ael_mmseg.datasets import TwoRangeRandomResize


def test_half_the_draws_fall_in_each_range_uniformly():
    random.seed(0)
    jitter = TwoRangeRandomResize(ratio_range=(0.5, 2.0))
    ratios = np.array([jitter.draw_ratio() for _ in range(20000)])
    below, above = ratios[ratios < 1], ratios[ratios >= 1]
    assert ratios.min() >= 0.5 and ratios.max() <= 2.0
    # p = 0.5 per range (a single uniform draw on [0.5, 2] would put 1/3 below 1).
    assert abs(len(below) / len(ratios) - 0.5) < 0.015
    # Uniform inside each range: mean and quartiles of U[0.5, 1] and U[1, 2].
    assert abs(below.mean() - 0.75) < 0.01 and abs(above.mean() - 1.5) < 0.02
    np.testing.assert_allclose(np.quantile(below, [0.25, 0.75]), [0.625, 0.875], atol=0.01)
    np.testing.assert_allclose(np.quantile(above, [0.25, 0.75]), [1.25, 1.75], atol=0.02)


def test_copy_paste_range_is_split_at_one_too():
    random.seed(1)
    ratios = np.array([TwoRangeRandomResize((0.1, 2.0)).draw_ratio() for _ in range(20000)])
    assert abs((ratios < 1).mean() - 0.5) < 0.015
    assert abs(ratios[ratios < 1].mean() - 0.55) < 0.01


def test_resizes_the_native_image_and_its_labels_by_the_drawn_factor():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
    labels = rng.integers(0, 21, (375, 500), dtype=np.uint8)
    random.seed(3)
    expected = TwoRangeRandomResize().draw_ratio()
    random.seed(3)
    out = TwoRangeRandomResize().transform(
        dict(img=img, gt_seg_map=labels, seg_fields=['gt_seg_map'], img_shape=(375, 500)))
    h, w = int(375 * expected), int(500 * expected)
    assert out['img'].shape == (h, w, 3) and out['gt_seg_map'].shape == (h, w)
    assert out['img_shape'] == (h, w)
    assert set(np.unique(out['gt_seg_map'])) <= set(np.unique(labels))  # nearest: no new ids


@pytest.mark.parametrize('bad', [(0.0, 2.0), (1.2, 2.0), (0.5, 0.9), (0.5, )])
def test_bad_ranges_are_refused_naming_the_rule(bad):
    with pytest.raises(ValueError, match='0 < low <= 1 <= high'):
        TwoRangeRandomResize(ratio_range=bad)
