import os
import os.path as osp
import random
import shutil

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from ael_mmseg.datasets import SemiSegDataset
from ael_mmseg.datasets.semi_seg_dataset import SampleKey

PIPE_L = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
          dict(type='PackSegInputs')]
PIPE_U = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]


def build(root, labeled_ann='splits/labeled.txt', unlabeled_ann='splits/unlabeled.txt',
          paste=True):
    init_default_scope('mmseg')
    prefix = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')
    common = dict(type='LongTailToyDataset', data_root=root, data_prefix=prefix)
    return SemiSegDataset(labeled=dict(common, ann_file=labeled_ann, pipeline=PIPE_L),
                          unlabeled=dict(common, ann_file=unlabeled_ann, pipeline=PIPE_U),
                          paste_pipeline=PIPE_L if paste else None)


def test_items_carry_role_index_and_acm_class(toy_root):
    dataset = build(toy_root)
    assert len(dataset.labeled) == 6 and len(dataset.unlabeled) == 8
    item = dataset[('unsup_source', 5, 3)]
    meta = item['data_samples'].metainfo
    assert (meta['ael_role'], meta['sample_idx'], meta['acm_class']) == ('unsup_source', 5, 3)
    assert 'gt_sem_seg' not in item['data_samples']
    sup = dataset[('sup', 2)]
    assert sup['data_samples'].metainfo['ael_role'] == 'sup'
    assert sup['data_samples'].gt_sem_seg.data.shape[-2:] == (32, 32)
    assert dataset.metainfo['classes'][0] == 'smooth_field'


def test_plain_index_is_refused_with_a_hint(toy_root):
    with pytest.raises(KeyError, match='SemiSegSampler'):
        build(toy_root)[3]


def test_empty_split_is_named(toy_root, tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    with pytest.raises(ValueError, match='labeled split is empty'):
        build(toy_root, labeled_ann=str(empty))


def test_label_values_out_of_range_name_the_file(toy_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    path = osp.join(root, 'ann_dir', 'train', 'train_00001.png')
    label = np.array(Image.open(path))
    label[0, 0] = 12
    Image.fromarray(label).save(path)
    dataset = build(root)
    with pytest.raises(ValueError, match=r'train_00001\.png.*\[12\]'):
        dataset[('sup', 1)]
    dataset[('sup', 0)]  # the others still load


def test_corrupt_image_names_the_file(toy_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    with open(osp.join(root, 'img_dir', 'train', 'train_00007.png'), 'wb') as f:
        f.write(b'not a png')
    dataset = build(root)
    with pytest.raises(RuntimeError, match='train_00007.png'):
        dataset[('unsup', 1)]  # unlabeled ids start after the 6 labeled ones


def test_missing_data_root_and_split_file_are_named(toy_root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"labeled.data_root '.*nowhere' does not exist"):
        build(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match=r'unlabeled split file .*missing\.txt'):
        build(toy_root, unlabeled_ann='splits/missing.txt')


@pytest.mark.parametrize('side,folder,sample', [('unlabeled', 'img_dir', 'train_00009'),
                                                ('labeled', 'ann_dir', 'train_00002')])
def test_split_listing_missing_files_is_refused_before_training(toy_root, tmp_path, side,
                                                                folder, sample):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    os.remove(osp.join(root, folder, 'train', sample + '.png'))
    with pytest.raises(FileNotFoundError,
                       match=rf'1 file\(s\) listed by the {side} split .* do not exist: '
                             rf"'.*{folder}/train/{sample}\.png'"):
        build(root)


def test_a_key_seed_fixes_the_augmentation_whatever_was_drawn_before(toy_root):
    init_default_scope('mmseg')
    prefix = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')
    random_pipe = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                   dict(type='RandomResize', scale=(32, 32), ratio_range=(0.5, 2.0),
                        keep_ratio=True),
                   dict(type='RandomCrop', crop_size=(16, 16)),
                   dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]
    common = dict(type='LongTailToyDataset', data_root=toy_root, data_prefix=prefix)
    dataset = SemiSegDataset(labeled=dict(common, ann_file='splits/labeled.txt',
                                          pipeline=random_pipe),
                             unlabeled=dict(common, ann_file='splits/unlabeled.txt',
                                            pipeline=PIPE_U))

    def load(seed):
        return dataset[SampleKey('sup', 1, -1, seed)]['inputs'].numpy()

    np.random.seed(0)
    first = load(12345)
    np.random.seed(99)
    random.seed(99)
    assert np.array_equal(load(12345), first)
    assert any(not np.array_equal(load(seed), first) for seed in range(5))
