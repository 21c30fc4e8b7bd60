"""Scale jitter of the original AEL code: one of two ranges, then a uniform draw."""
import random
from typing import Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class TwoRangeRandomResize(BaseTransform):
    """Resize by a factor drawn from [low, 1] or [1, high], each with p = 0.5.

    Follows ``RandResize`` of the original AEL code
    (``semseg/dataset/augmentation.py``): with probability 0.5 the factor is
    uniform in ``[ratio_range[0], 1]``, otherwise uniform in
    ``[1, ratio_range[1]]``; the new size is ``int(w * s), int(h * s)`` of the
    image as loaded (its native size), image bilinear, labels nearest. mmseg's
    ``RandomResize(ratio_range=...)`` draws one uniform factor over the whole
    range, which for [0.5, 2] spends 2/3 of the draws above 1 instead of 1/2.
    The draw uses Python's ``random`` like mmcv's transforms, so the loader's
    worker seeding governs it.

    Required keys: img, (gt_seg_map). Modified keys: img, img_shape,
    (gt_seg_map). Added keys: scale, scale_factor, keep_ratio.

    Args:
        ratio_range (Sequence[float]): (low, high) with 0 < low <= 1 <= high.
    """

    def __init__(self, ratio_range: Sequence[float] = (0.5, 2.0)):
        if (len(ratio_range) != 2 or not 0 < ratio_range[0] <= 1.0 <= ratio_range[1]):
            raise ValueError('TwoRangeRandomResize needs ratio_range=(low, high) with '
                             f'0 < low <= 1 <= high, got {ratio_range}')
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))

    def draw_ratio(self) -> float:
        """One resize factor: uniform on [low, 1] or on [1, high], p = 0.5 each."""
        low, high = self.ratio_range
        if random.random() < 0.5:
            return low + (1.0 - low) * random.random()
        return 1.0 + (high - 1.0) * random.random()

    def transform(self, results: dict) -> dict:
        ratio = self.draw_ratio()
        h, w = results['img'].shape[:2]
        new_w, new_h = int(w * ratio), int(h * ratio)
        results['img'] = mmcv.imresize(results['img'], (new_w, new_h), interpolation='bilinear')
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imresize(results[key], (new_w, new_h), interpolation='nearest')
        results['img_shape'] = (new_h, new_w)
        results['scale'] = (new_w, new_h)
        results['scale_factor'] = np.array([new_w / w, new_h / h], dtype=np.float32)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ratio_range={self.ratio_range})'
