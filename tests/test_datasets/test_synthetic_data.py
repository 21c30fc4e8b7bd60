"""Tests of the synthetic dataset generators and of LongTailToyDataset."""
import filecmp
import os
import os.path as osp

import mmseg
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.datasets import CityscapesDataset, PascalVOCDataset
from mmseg.registry import DATASETS
from PIL import Image

from ael_mmseg.datasets import LongTailToyDataset
from ael_mmseg.datasets.longtail_toy import (LONGTAIL_TOY_CLASSES, class_pixel_frequencies,
                                             make_longtail_toy, read_label_maps)
from helpers.mini_datasets import make_mini_cityscapes, make_mini_voc

NUM_CLASSES = len(LONGTAIL_TOY_CLASSES)
LOAD_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
MMSEG_BASE = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', '_base_', 'datasets')


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    # Pipelines name transforms by their mmseg registry names.
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """A toy dataset big enough for stable frequency statistics (~260 images)."""
    root = tmp_path_factory.mktemp('longtail_toy')
    return make_longtail_toy(root, num_labeled=20, num_unlabeled=180, num_val=60, size=64, seed=0)


def _load(root, split_file, split):
    ann_dir = f'ann_dir/{split}'
    labels = read_label_maps(root, split_file, ann_dir)
    with open(osp.join(root, split_file)) as f:
        ids = [line.strip() for line in f]
    imgs = [np.asarray(Image.open(osp.join(root, 'img_dir', split, i + '.png'))) for i in ids]
    return np.stack(imgs), np.stack(labels)


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# --------------------------------------------------------------------------- #
# Long-tailed toy dataset
# --------------------------------------------------------------------------- #
def test_images_and_labels_have_the_documented_format(toy):
    imgs, labels = _load(toy.root, 'splits/labeled.txt', 'train')
    assert imgs.shape == (20, 64, 64, 3) and imgs.dtype == np.uint8
    assert labels.shape == (20, 64, 64) and labels.dtype == np.uint8
    assert labels.max() < NUM_CLASSES


def test_class_frequencies_are_steeply_long_tailed(toy):
    _, labeled = _load(toy.root, 'splits/labeled.txt', 'train')
    _, unlabeled = _load(toy.root, 'splits/unlabeled.txt', 'train')
    labels = np.concatenate([labeled, unlabeled])
    freq = np.sort(class_pixel_frequencies(labels, NUM_CLASSES))[::-1]
    assert freq[0] > 0.30, freq
    assert freq[:3].sum() > 0.8, freq  # the stuff head keeps most pixels
    assert np.all(freq[-3:] < 0.02) and np.all(freq[-3:] > 0.0005), freq
    assert np.all(freq > 0), 'every class must appear in train'
    # The tail classes are small objects present in a minority of images.
    order = np.argsort(class_pixel_frequencies(labels, NUM_CLASSES))
    presence = np.array([(labels == c).any(axis=(1, 2)).mean() for c in order[:4]])
    assert np.all(presence < 0.5) and np.all(presence > 0.05), presence


def test_colour_alone_does_not_solve_it(toy):
    """A nearest-mean-colour classifier fitted on labeled pixels is clearly imperfect."""
    imgs, labels = _load(toy.root, 'splits/labeled.txt', 'train')
    x, y = imgs.reshape(-1, 3).astype(np.float64), labels.ravel()
    means = np.stack([x[y == c].mean(0) for c in range(NUM_CLASSES)])
    val_imgs, val_labels = _load(toy.root, 'splits/val.txt', 'val')
    xv = val_imgs.reshape(-1, 3).astype(np.float64)
    pred = ((xv[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == val_labels.ravel()).mean() < 0.85


def _box_mean(a, k):
    """k x k mean filter (edge padding) of (N, H, W, C) arrays."""
    p = k // 2
    c = np.pad(a, ((0, 0), (p, p), (p, p), (0, 0)), mode='edge').cumsum(1).cumsum(2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0), (0, 0)))
    return (c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]) / (k * k)


def _local_features(imgs):
    """Colour, local means, local contrast and directional gradient energy per pixel."""
    x = imgs.astype(np.float64)
    lum = x.mean(-1, keepdims=True)
    feats = [x]
    for k in (3, 7):
        feats.append(_box_mean(x, k))
        var = _box_mean(lum**2, k) - _box_mean(lum, k)**2
        feats.append(np.sqrt(np.maximum(var, 0)))
    feats.append(_box_mean(np.abs(np.diff(lum, axis=1, append=lum[:, -1:])), 5))
    feats.append(_box_mean(np.abs(np.diff(lum, axis=2, append=lum[:, :, -1:])), 5))
    f = np.concatenate(feats, -1)
    return f.reshape(-1, f.shape[-1])


def _linear_accuracy(train_x, train_y, val_x, val_y):
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a = np.c_[(train_x - mu) / sd, np.ones(len(train_x))]
    w = np.linalg.lstsq(a, np.eye(NUM_CLASSES)[train_y], rcond=None)[0]
    pred = (np.c_[(val_x - mu) / sd, np.ones(len(val_x))] @ w).argmax(1)
    return (pred == val_y).mean()


def test_texture_is_consistent_and_informative(toy):
    """Learnable beyond colour: local texture statistics, fitted on the 20 labeled
    images, generalise to val clearly better than colour alone."""
    imgs, labels = _load(toy.root, 'splits/labeled.txt', 'train')
    val_imgs, val_labels = _load(toy.root, 'splits/val.txt', 'val')
    y, yv = labels.ravel(), val_labels.ravel()
    colour = _linear_accuracy(
        imgs.reshape(-1, 3).astype(np.float64), y,
        val_imgs.reshape(-1, 3).astype(np.float64), yv)
    texture = _linear_accuracy(_local_features(imgs), y, _local_features(val_imgs), yv)
    assert texture > colour + 0.08, (colour, texture)


def test_same_seed_gives_the_same_bytes(tmp_path):
    kwargs = dict(num_labeled=3, num_unlabeled=2, num_val=2, size=32, seed=7)
    make_longtail_toy(tmp_path / 'a', **kwargs)
    make_longtail_toy(tmp_path / 'b', **kwargs)
    files = _files(tmp_path / 'a')
    assert files == _files(tmp_path / 'b') and len(files) == 2 * 7 + 3
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / 'a', tmp_path / 'b', files, shallow=False)
    assert mismatch == [] and errors == []


def test_different_seeds_differ(tmp_path):
    kwargs = dict(num_labeled=2, num_unlabeled=0, num_val=1, size=32)
    make_longtail_toy(tmp_path / 'a', seed=0, **kwargs)
    make_longtail_toy(tmp_path / 'b', seed=1, **kwargs)
    for path in ('img_dir/train/train_00000.png', 'ann_dir/train/train_00001.png',
                 'img_dir/val/val_00000.png'):
        a = np.asarray(Image.open(tmp_path / 'a' / path))
        b = np.asarray(Image.open(tmp_path / 'b' / path))
        assert not np.array_equal(a, b), path


def test_images_do_not_depend_on_split_sizes(tmp_path):
    """An image is seeded by (seed, split, index): resizing splits reshuffles nothing."""
    small = make_longtail_toy(tmp_path / 'a', num_labeled=2, num_unlabeled=2, num_val=1, size=32)
    large = make_longtail_toy(tmp_path / 'b', num_labeled=3, num_unlabeled=5, num_val=3, size=32)
    assert set(small.splits['labeled']) < set(large.splits['labeled'])
    for path in ('img_dir/train/train_00003.png', 'ann_dir/train/train_00003.png',
                 'img_dir/val/val_00000.png'):
        assert filecmp.cmp(tmp_path / 'a' / path, tmp_path / 'b' / path, shallow=False), path


def test_split_files_are_disjoint_and_complete(toy):
    def read(name):
        with open(osp.join(toy.root, 'splits', name)) as f:
            return [line.strip() for line in f]

    labeled, unlabeled, val = read('labeled.txt'), read('unlabeled.txt'), read('val.txt')
    assert (len(labeled), len(unlabeled), len(val)) == (20, 180, 60)
    assert not set(labeled) & set(unlabeled)
    train_files = {f[:-4] for f in os.listdir(osp.join(toy.root, 'img_dir', 'train'))}
    assert set(labeled) | set(unlabeled) == train_files
    assert set(val) == {f[:-4] for f in os.listdir(osp.join(toy.root, 'img_dir', 'val'))}
    assert toy.splits == dict(labeled=labeled, unlabeled=unlabeled, val=val)


@pytest.mark.parametrize('ann_file,num', [('splits/labeled.txt', 20),
                                          ('splits/unlabeled.txt', 180)])
def test_longtail_toy_dataset_loads_the_split(toy, ann_file, num):
    dataset = LongTailToyDataset(
        data_root=toy.root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        ann_file=ann_file,
        pipeline=LOAD_PIPELINE)
    assert len(dataset) == num
    assert dataset.metainfo['classes'] == LONGTAIL_TOY_CLASSES
    assert len(dataset.metainfo['palette']) == NUM_CLASSES
    sample = dataset[0]
    assert sample['img'].shape == (64, 64, 3)
    assert sample['gt_seg_map'].shape == (64, 64)
    assert sample['gt_seg_map'].max() < NUM_CLASSES


def test_longtail_toy_dataset_is_registered(toy):
    dataset = DATASETS.build(
        dict(type='LongTailToyDataset', data_root=toy.root,
             data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
             ann_file='splits/val.txt', pipeline=[]))
    assert isinstance(dataset, LongTailToyDataset) and len(dataset) == 60


def test_size_scales_the_images(tmp_path):
    make_longtail_toy(tmp_path, num_labeled=1, num_unlabeled=0, num_val=0, size=96)
    img = np.asarray(Image.open(tmp_path / 'img_dir/train/train_00000.png'))
    assert img.shape == (96, 96, 3)


@pytest.mark.parametrize('kwargs,name', [
    (dict(num_labeled=0), 'num_labeled'),
    (dict(num_unlabeled=-1), 'num_unlabeled'),
    (dict(num_val=1.5), 'num_val'),
    (dict(size=8), 'size'),
    (dict(seed=-1), 'seed'),
])
def test_longtail_toy_rejects_bad_arguments(tmp_path, kwargs, name):
    args = dict(num_labeled=1, num_unlabeled=0, num_val=0, size=32, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        make_longtail_toy(tmp_path, **args)


# --------------------------------------------------------------------------- #
# Mini Cityscapes / Pascal VOC
# --------------------------------------------------------------------------- #
def _dataset_from_base_config(name, split, root):
    """The train/val dataset of MMSeg's own base config, pointed at ``root``."""
    cfg = Config.fromfile(osp.join(MMSEG_BASE, name))
    dataset = cfg[f'{split}_dataloader']['dataset']
    parts = dataset['datasets'] if dataset['type'] == 'ConcatDataset' else [dataset]
    for part in parts:
        part.update(data_root=str(root), pipeline=LOAD_PIPELINE)
    return DATASETS.build(dataset)


def _check_samples(dataset, shape, max_label):
    labels = []
    for sample in dataset:
        assert sample['img'].shape == shape + (3, )
        assert sample['gt_seg_map'].shape == shape
        labels.append(sample['gt_seg_map'])
    values = np.unique(np.stack(labels))
    assert set(values.tolist()) <= set(range(max_label + 1)) | {255}, values
    return values


def test_mini_cityscapes_reads_with_cityscapes_dataset(tmp_path):
    info = make_mini_cityscapes(tmp_path, num_train=6, num_val=2, size=(64, 128), seed=0)
    assert len(info.splits['train']) == 6 and len(info.splits['val']) == 2
    for split, num in (('train', 6), ('val', 2)):
        dataset = CityscapesDataset(
            data_root=str(tmp_path),
            data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'),
            pipeline=LOAD_PIPELINE)
        assert len(dataset) == num
        values = _check_samples(dataset, (64, 128), 18)
        assert 255 in values and len(values) > 4
    # The ids work as MMSeg ann_file lines, e.g. for a labeled subset.
    with open(tmp_path / 'subset.txt', 'w') as f:
        f.write('\n'.join(info.splits['train'][:2]))
    subset = CityscapesDataset(
        data_root=str(tmp_path), ann_file='subset.txt',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=LOAD_PIPELINE)
    assert len(subset) == 2
    _check_samples(subset, (64, 128), 18)


def test_mini_cityscapes_reads_with_mmseg_base_config(tmp_path):
    make_mini_cityscapes(tmp_path, num_train=3, num_val=2)
    assert len(_dataset_from_base_config('cityscapes.py', 'train', tmp_path)) == 3
    assert len(_dataset_from_base_config('cityscapes.py', 'val', tmp_path)) == 2


def test_mini_voc_reads_with_voc_dataset(tmp_path):
    info = make_mini_voc(tmp_path, num_train=6, num_val=2, size=(64, 64), seed=0, aug=True)
    assert [len(info.splits[k]) for k in ('train', 'val', 'aug', 'trainaug')] == [6, 2, 6, 12]
    for split, num in (('train', 6), ('val', 2)):
        dataset = PascalVOCDataset(
            data_root=str(tmp_path),
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file=f'ImageSets/Segmentation/{split}.txt',
            pipeline=LOAD_PIPELINE)
        assert len(dataset) == num
        values = _check_samples(dataset, (64, 64), 20)
        assert 0 in values and 255 in values  # background and the void outlines
    # SBD-style masks: no outlines; they cover train and the extra ids.
    for split, num in (('aug', 6), ('trainaug', 12)):
        dataset = PascalVOCDataset(
            data_root=str(tmp_path),
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file=f'ImageSets/Segmentation/{split}.txt',
            pipeline=LOAD_PIPELINE)
        assert len(dataset) == num
        assert 255 not in _check_samples(dataset, (64, 64), 20)
    # The aug list excludes train and val ids, as tools/dataset_converters/voc_aug.py does.
    assert not set(info.splits['aug']) & (set(info.splits['train']) | set(info.splits['val']))


def test_mini_voc_labels_are_palette_pngs(tmp_path):
    info = make_mini_voc(tmp_path, num_train=1, num_val=1)
    png = Image.open(tmp_path / 'SegmentationClass' / (info.splits['train'][0] + '.png'))
    assert png.mode == 'P' and png.getpalette()[3:6] == [128, 0, 0]


def test_mini_voc_reads_with_mmseg_base_configs(tmp_path):
    make_mini_voc(tmp_path, num_train=3, num_val=2, num_aug=4)
    assert len(_dataset_from_base_config('pascal_voc12.py', 'train', tmp_path)) == 3
    assert len(_dataset_from_base_config('pascal_voc12_aug.py', 'train', tmp_path)) == 3 + 4
    assert len(_dataset_from_base_config('pascal_voc12.py', 'val', tmp_path)) == 2


def test_mini_voc_without_aug(tmp_path):
    info = make_mini_voc(tmp_path, num_train=2, num_val=1, aug=False)
    assert set(info.splits) == {'train', 'val'}
    assert not (tmp_path / 'SegmentationClassAug').exists()
    assert not (tmp_path / 'ImageSets/Segmentation/aug.txt').exists()


def test_mini_roots_are_deterministic(tmp_path):
    for make in (make_mini_cityscapes, make_mini_voc):
        make(tmp_path / make.__name__ / 'a', num_train=2, num_val=1, seed=3)
        make(tmp_path / make.__name__ / 'b', num_train=2, num_val=1, seed=3)
        files = _files(tmp_path / make.__name__ / 'a')
        _, mismatch, errors = filecmp.cmpfiles(
            tmp_path / make.__name__ / 'a', tmp_path / make.__name__ / 'b', files,
            shallow=False)
        assert files and mismatch == [] and errors == []


@pytest.mark.parametrize('make,kwargs,name', [
    (make_mini_cityscapes, dict(num_train=0), 'num_train'),
    (make_mini_cityscapes, dict(size=(8, 64)), 'size'),
    (make_mini_voc, dict(num_val=0), 'num_val'),
    (make_mini_voc, dict(size=(64, 64, 3)), 'size'),
    (make_mini_voc, dict(num_aug=0), 'num_aug'),
])
def test_mini_roots_reject_bad_arguments(tmp_path, make, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(tmp_path, **kwargs)
