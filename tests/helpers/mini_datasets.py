"""Mini Cityscapes and PASCAL VOC roots, for tests that run the real configs' datasets.

:func:`make_mini_cityscapes` and :func:`make_mini_voc` write a few images in
exactly the directory layouts that MMSeg's ``CityscapesDataset`` and
``PascalVOCDataset`` read. Both are deterministic by seed and free of downloads;
the images are colour-coded labels plus noise, learnable but meaningless.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ael_mmseg.datasets.longtail_toy import IGNORE_INDEX, SyntheticDatasetInfo

PathLike = Union[str, os.PathLike]


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')


def _pixel_centres(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """(y, x) of every pixel centre, each (H, W) float64."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    return yy + 0.5, xx + 0.5


def _save_png(path: str, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format='PNG')


def _check_hw(name: str, size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 16 for s in hw):
        raise ValueError(f'{name} must be an int or an (h, w) pair of ints >= 16, got {size!r}')
    return int(hw[0]), int(hw[1])


def _random_rgb(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(30, 225, (n, 3))


def _colourise(label: np.ndarray, colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB image whose colour follows the label (so it is learnable), plus noise."""
    img = colours[np.where(label == IGNORE_INDEX, 0, label)]
    img += rng.normal(0.0, 6.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _render_street(rng: np.random.Generator, hw: Tuple[int, int]) -> np.ndarray:
    """A crude street scene in Cityscapes train ids, with an ignored ego-vehicle band."""
    h, w = hw
    yy, xx = _pixel_centres(h, w)
    label = np.full((h, w), 10, np.uint8)  # sky
    horizon = h * rng.uniform(0.35, 0.5)
    sidewalk = horizon + (h - horizon) * rng.uniform(0.2, 0.4)
    label[yy > horizon * rng.uniform(0.3, 0.7)] = 2  # building
    vegetation = (yy > horizon * 0.6) & (xx < w * rng.uniform(0.1, 0.3))
    label[vegetation] = 8
    label[yy > horizon] = 1  # sidewalk
    label[yy > sidewalk] = 0  # road
    # A car (13), a person (11) and a pole (5), plus one random other class.
    cx = rng.uniform(0.3, 0.8) * w
    car = (np.abs(xx - cx) < w * 0.08) & (np.abs(yy - sidewalk) < h * 0.08)
    label[car] = 13
    px = rng.uniform(0.1, 0.9) * w
    label[(np.abs(xx - px) < 1.5) & (np.abs(yy - horizon) < h * 0.12)] = 11
    label[(np.abs(xx - rng.uniform(0, w)) < 1) & (yy < horizon)] = 5
    other = int(rng.integers(0, 19))
    oy, ox = rng.uniform(0, h), rng.uniform(0, w)
    label[np.hypot(yy - oy, xx - ox) < min(h, w) * 0.08] = other
    # The ego vehicle at the bottom is ignored (255), as in gtFine.
    label[yy > h * 0.92] = IGNORE_INDEX
    return label


def make_mini_cityscapes(root: PathLike,
                         num_train: int = 6,
                         num_val: int = 2,
                         size: Union[int, Sequence[int]] = (64, 128),
                         seed: int = 0) -> SyntheticDatasetInfo:
    """Write a tiny Cityscapes root in the layout of MMSeg's ``CityscapesDataset``.

    Layout (as ``tools/dataset_converters/cityscapes.py`` leaves it; only the
    files ``CityscapesDataset`` reads are written)::

        root/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
        root/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png

    Labels are train ids 0..18 with 255 for the ignored bottom band. The
    training images are spread over two cities to exercise the recursive scan.

    Args:
        root (str | PathLike): Dataset root, created if missing.
        num_train (int): Training images (>= 1).
        num_val (int): Validation images (>= 1).
        size (int | Sequence[int]): Image (h, w); an int means square.
        seed (int): Seed (>= 0).

    Returns:
        SyntheticDatasetInfo: ids per split (``train``, ``val``) as
        ``<city>/<city>_<seq>_<frame>``, i.e. ``ann_file`` lines relative to
        ``leftImg8bit/<split>``.
    """
    _check_count('num_train', num_train, 1)
    _check_count('num_val', num_val, 1)
    _check_count('seed', seed, 0)
    hw = _check_hw('size', size)
    root = os.fspath(root)
    rng = np.random.default_rng([seed, 2])
    colours = _random_rgb(rng, 19)
    cities = {'train': ('aachen', 'bremen'), 'val': ('frankfurt', )}
    info = SyntheticDatasetInfo(root=root)
    for split, num in (('train', num_train), ('val', num_val)):
        info.splits[split] = []
        for index in range(num):
            city = cities[split][index % len(cities[split])]
            name = f'{city}_{index:06d}_{19 + index:06d}'
            label = _render_street(rng, hw)
            img = _colourise(label, colours, rng)
            img_dir = osp.join(root, 'leftImg8bit', split, city)
            ann_dir = osp.join(root, 'gtFine', split, city)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(ann_dir, exist_ok=True)
            _save_png(osp.join(img_dir, name + '_leftImg8bit.png'), img)
            _save_png(osp.join(ann_dir, name + '_gtFine_labelTrainIds.png'), label)
            info.splits[split].append(f'{city}/{name}')
    return info


def _voc_colormap() -> List[int]:
    """The PASCAL VOC palette (the bit-interleaved colour map), flat, 256 entries."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def _render_voc_objects(rng: np.random.Generator, hw: Tuple[int, int]) -> np.ndarray:
    """Background (0) with one to three elliptic objects of classes 1..20."""
    yy, xx = _pixel_centres(*hw)
    label = np.zeros(hw, np.uint8)
    for _ in range(rng.integers(1, 3, endpoint=True)):
        cls = int(rng.integers(1, 21))
        cy, cx = rng.uniform(0, hw[0]), rng.uniform(0, hw[1])
        ry, rx = rng.uniform(0.12, 0.3, 2) * np.array(hw)
        label[np.hypot((yy - cy) / ry, (xx - cx) / rx) <= 1] = cls
    return label


def _with_outlines(label: np.ndarray) -> np.ndarray:
    """``label`` with every pixel next to a class change set to 255.

    VOC's SegmentationClass marks object outlines as 255 ("void"); SBD's masks,
    which become SegmentationClassAug, have no such outlines.
    """
    edge = np.zeros(label.shape, bool)
    vert, horiz = label[1:] != label[:-1], label[:, 1:] != label[:, :-1]
    edge[1:] |= vert
    edge[:-1] |= vert
    edge[:, 1:] |= horiz
    edge[:, :-1] |= horiz
    return np.where(edge, IGNORE_INDEX, label).astype(np.uint8)


def make_mini_voc(root: PathLike,
                  num_train: int = 6,
                  num_val: int = 2,
                  size: Union[int, Sequence[int]] = (64, 64),
                  seed: int = 0,
                  aug: bool = True,
                  num_aug: Optional[int] = None) -> SyntheticDatasetInfo:
    """Write a tiny PASCAL VOC 2012 root in the layout of MMSeg's ``PascalVOCDataset``.

    Layout (``data/VOCdevkit/VOC2012`` of MMSeg's configs)::

        root/JPEGImages/<id>.jpg
        root/SegmentationClass/<id>.png          palette PNG, 0..20, 255 outlines
        root/ImageSets/Segmentation/{train,val}.txt

    and with ``aug=True`` what ``tools/dataset_converters/voc_aug.py`` adds::

        root/SegmentationClassAug/<id>.png       grey PNG, 0..20, no 255
        root/ImageSets/Segmentation/aug.txt      SBD ids not in train or val
        root/ImageSets/Segmentation/trainaug.txt train + aug ids

    ``SegmentationClassAug`` holds masks for the train and the extra ids (SBD
    covers VOC train), so both ``pascal_voc12_aug.py`` (train from
    ``SegmentationClass`` + aug from ``SegmentationClassAug``) and a
    ``trainaug.txt`` dataset read complete labels.

    Args:
        root (str | PathLike): Dataset root, created if missing.
        num_train (int): Images in ``train.txt`` (>= 1).
        num_val (int): Images in ``val.txt`` (>= 1).
        size (int | Sequence[int]): Image (h, w); an int means square.
        seed (int): Seed (>= 0).
        aug (bool): Also write the SBD-augmented files.
        num_aug (int, optional): Extra SBD-only images with ``aug=True``
            (>= 1). Defaults to ``num_train``.

    Returns:
        SyntheticDatasetInfo: ids per split ``train``, ``val`` and, with
        ``aug=True``, ``aug`` and ``trainaug``.
    """
    _check_count('num_train', num_train, 1)
    _check_count('num_val', num_val, 1)
    _check_count('seed', seed, 0)
    hw = _check_hw('size', size)
    if not isinstance(aug, bool):
        raise ValueError(f'aug must be a bool, got {aug!r}')
    num_aug = num_train if num_aug is None else num_aug
    if aug:
        _check_count('num_aug', num_aug, 1)
    root = os.fspath(root)
    rng = np.random.default_rng([seed, 3])
    colours = _random_rgb(rng, 21)
    palette = _voc_colormap()
    # VOC ids look like 2007_000032; SBD-only ones like 2008_000002.
    splits = {'train': [f'2007_{i:06d}' for i in range(num_train)],
              'val': [f'2007_{num_train + i:06d}' for i in range(num_val)]}
    if aug:
        splits['aug'] = [f'2008_{i:06d}' for i in range(num_aug)]
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    if aug:
        os.makedirs(osp.join(root, 'SegmentationClassAug'), exist_ok=True)
    for split, split_ids in splits.items():
        for sample_id in split_ids:
            sbd = aug and split != 'val'
            voc = split != 'aug'
            label = _render_voc_objects(rng, hw)
            Image.fromarray(_colourise(label, colours, rng)).save(
                osp.join(root, 'JPEGImages', sample_id + '.jpg'), format='JPEG', quality=95)
            if voc:
                png = Image.fromarray(_with_outlines(label), mode='P')
                png.putpalette(palette)
                png.save(osp.join(root, 'SegmentationClass', sample_id + '.png'))
            if sbd:
                _save_png(osp.join(root, 'SegmentationClassAug', sample_id + '.png'), label)
    if aug:
        splits['trainaug'] = splits['train'] + splits['aug']
    for split, split_ids in splits.items():
        with open(osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'), 'w') as f:
            f.writelines(sample_id + '\n' for sample_id in split_ids)
    return SyntheticDatasetInfo(root=root, splits=splits)
