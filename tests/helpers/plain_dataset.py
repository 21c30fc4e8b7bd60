"""A small dataset in MMSeg's plain layout, with class names of its own.

What a user brings to ``make_semi_splits.py plain``: a folder of images and
single-channel masks in ``img_dir/{train,val}`` / ``ann_dir/{train,val}``,
any suffixes. The scene is a metal surface with defects, long tailed like the
data AEL is for: the surface covers most pixels, rust patches a few percent,
scratches (thin lines) and dents (small discs) well under one percent.
"""
import os
import os.path as osp
import re
from typing import Dict, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ael_mmseg.datasets.longtail_toy import SyntheticDatasetInfo

#: Class names of the defect scene, in label-id order.
DEFECT_CLASSES = ('metal', 'rust', 'scratch', 'dent')
#: A display palette for :data:`DEFECT_CLASSES`.
DEFECT_PALETTE = [[128, 128, 128], [160, 82, 45], [255, 255, 0], [0, 0, 255]]
# Rendering colours (mean RGB) per class.
_COLOURS = np.array([[150, 150, 155], [150, 80, 40], [225, 225, 230], [90, 90, 100]], float)


def render_defect_sample(rng: np.random.Generator,
                         hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 image and its (H, W) uint8 mask of the defect scene."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    label = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 3)):  # rust: blobs
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.06, 0.18, 2) * np.array([h, w])
        label[np.hypot((yy - cy) / ry, (xx - cx) / rx) <= 1] = 1
    if rng.random() < 0.6:  # scratch: a thin line
        p0, p1 = rng.uniform(0, 1, 2) * (w, h), rng.uniform(0, 1, 2) * (w, h)
        d = p1 - p0
        t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
        label[np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1]) <= 0.8] = 2
    if rng.random() < 0.4:  # dent: a small disc
        cy, cx = rng.uniform(3, h - 3), rng.uniform(3, w - 3)
        label[np.hypot(yy - cy, xx - cx) <= rng.uniform(1.5, 3.0)] = 3
    img = _COLOURS[label] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), label


def _save_image(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if path.lower().endswith(('.jpg', '.jpeg')):
        Image.fromarray(img).save(path, format='JPEG', quality=95)
    else:
        Image.fromarray(img).save(path, format='PNG')


def make_plain_dataset(root: Union[str, os.PathLike],
                       num_train: int = 12,
                       num_val: int = 4,
                       size: Tuple[int, int] = (48, 64),
                       img_suffix: str = '.jpg',
                       seg_map_suffix: str = '_mask.png',
                       seed: int = 0) -> SyntheticDatasetInfo:
    """Write the defect dataset in MMSeg's plain layout.

    Layout::

        root/img_dir/{train,val}/<id><img_suffix>       RGB (JPEG for .jpg)
        root/ann_dir/{train,val}/<id><seg_map_suffix>   grey PNG, 0..3

    Ids are ``part_<k>`` (train) and ``check_<k>`` (val); no split list is
    written (``make_semi_splits.py plain`` writes them).

    Args:
        root (str | PathLike): Dataset root, created if missing.
        num_train (int): Training images.
        num_val (int): Validation images.
        size (tuple[int, int]): Image (h, w).
        img_suffix (str): Image suffix; ``.jpg`` / ``.jpeg`` write JPEG,
            anything else PNG.
        seg_map_suffix (str): Mask suffix (a PNG is written).
        seed (int): Seed.

    Returns:
        SyntheticDatasetInfo: Ids per split (``train``, ``val``).
    """
    root = os.fspath(root)
    rng = np.random.default_rng([seed, 15])
    splits: Dict[str, Sequence[str]] = {
        'train': [f'part_{k:03d}' for k in range(num_train)],
        'val': [f'check_{k:03d}' for k in range(num_val)]
    }
    for split, ids in splits.items():
        for sample_id in ids:
            img, label = render_defect_sample(rng, size)
            _save_image(osp.join(root, 'img_dir', split, sample_id + img_suffix), img)
            mask_path = osp.join(root, 'ann_dir', split, sample_id + seg_map_suffix)
            os.makedirs(osp.dirname(mask_path), exist_ok=True)
            Image.fromarray(label).save(mask_path, format='PNG')
    return SyntheticDatasetInfo(root=root, splits={k: list(v) for k, v in splits.items()})


def write_user_config(template: str, path: str, **values) -> str:
    """Copy a config and set top-level assignments, as a user edits a template.

    Each keyword replaces the first line ``<name> = ...`` of the template
    with ``<name> = <repr(value)>``; relative ``_base_`` paths are made
    absolute so that the copy can live anywhere.

    Args:
        template (str): The config to copy.
        path (str): Where to write the copy.
        **values: Names and values of the assignments to set.

    Returns:
        str: ``path``.

    Raises:
        KeyError: If the template has no top-level assignment to a name.
    """
    with open(template, encoding='utf-8') as f:
        text = f.read()
    for name, value in values.items():
        text, found = re.subn(rf'^{name} = .*$', f'{name} = {value!r}', text, count=1,
                              flags=re.MULTILINE)
        if not found:
            raise KeyError(f'{template} has no line "{name} = ..."')
    base_dir = osp.dirname(osp.abspath(template))
    text = re.sub(r"'(\.\.?/[^']*)'", lambda m: repr(osp.normpath(osp.join(base_dir, m[1]))),
                  text)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path
