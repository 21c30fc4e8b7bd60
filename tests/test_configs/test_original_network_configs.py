"""The original-network configs: the original AEL code's values where the pipeline differs.

Each test runs the shipped config's piece (data preprocessor, pipeline, head)
and checks it against what the original code does (hzhupku/SemiSeg-AEL
``semseg/dataset/augmentation.py``, ``pascal_voc_semi_cp.py``, ``eval.py``,
``decoder.py``).
"""
import glob
import math
import os.path as osp
import random

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample
from torch.nn.modules.batchnorm import _BatchNorm

from helpers.mini_datasets import make_mini_voc
from helpers.stock_tools import REPO_ROOT

AEL = osp.join(REPO_ROOT, 'configs', 'ael')
ORIGINAL = sorted(glob.glob(osp.join(AEL, 'ael_original-deeplabv3plus_*.py')))
CITY = osp.join(AEL, 'ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py')
VOC = osp.join(AEL, 'ael_original-deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_16-513x513.py')
MMSEG_VOC = osp.join(AEL, 'ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_16-513x513.py')


def _ids(paths):
    return [osp.basename(p) for p in paths]


def test_one_original_network_config_per_partition():
    names = set(_ids(ORIGINAL))
    for partition in ('1_32', '1_16', '1_8', '1_4', '1_2'):
        assert f'ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-{partition}-769x769.py' \
            in names
        assert f'ael_original-deeplabv3plus_r101-d8_8xb2-30k_voc12aug-{partition}-513x513.py' \
            in names
    assert len(names) == 10


@pytest.mark.parametrize('path', ORIGINAL, ids=_ids(ORIGINAL))
def test_network_settings_are_the_originals(path):
    seg = Config.fromfile(path).model.segmentor
    assert seg.type == 'SoftmaxSlideEncoderDecoder'
    assert seg.backbone.type == 'CeilPoolResNetV1c' and seg.backbone.depth == 101
    assert seg.backbone.stem_channels == 128 and tuple(seg.backbone.multi_grid) == (4, 8, 16)
    assert seg.decode_head.type == 'DenseDeepLabV3PlusHead'
    assert seg.auxiliary_head.type == 'BiasedFCNHead'
    for head in (seg.decode_head, seg.auxiliary_head):
        assert head.align_corners is True  # every interpolation of the original
        assert head.init_like_pytorch is True and head.init_cfg is None
    # The original's train.py / eval.py protocol is unchanged from the MMSeg-network family.
    if 'cityscapes' in path:
        assert seg.test_cfg.mode == 'slide' and tuple(seg.test_cfg.stride) == (513, 513)
        assert seg.test_cfg.stride[0] == math.ceil(769 * 2 / 3)  # eval.py stride_rate 2/3
    else:
        assert seg.test_cfg.mode == 'whole'


@pytest.mark.parametrize('path', [CITY, VOC], ids=['cityscapes', 'voc12aug'])
def test_padded_crop_borders_are_label_0_and_image_0_after_normalisation(path):
    """The original's Crop pads the label with 0 (a class: road / background, not the
    ignore index 255) and the normalised image with 0."""
    init_default_scope('mmseg')
    model = Config.fromfile(path).model
    assert model.segmentor.data_preprocessor.seg_pad_val == 0
    for cfg in (model.data_preprocessor, ):  # the training one: it pads to the crop
        preprocessor = MODELS.build(cfg)
        crop = tuple(cfg.size)
        img = torch.randint(0, 255, (3, 300, 400), dtype=torch.uint8)
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.full((1, 300, 400), 7)))
        sample.set_metainfo(dict(img_shape=(300, 400), ori_shape=(300, 400)))
        out = preprocessor(dict(inputs=[img], data_samples=[sample]), training=True)
        labels = out['data_samples'][0].gt_sem_seg.data
        assert tuple(labels.shape[-2:]) == crop
        assert (labels[:, :300, :400] == 7).all()
        assert (labels[:, 300:] == 0).all() and (labels[:, :, 400:] == 0).all()
        assert (out['inputs'][0][:, 300:] == 0).all()


def test_voc_keeps_the_native_scale(tmp_path):
    """No Resize to (2048, 512) first: the test image is the native one and the train
    jitter scales the native size (pascal_voc_semi_cp.build_transfrom without resize)."""
    init_default_scope('mmseg')
    make_mini_voc(tmp_path, num_train=2, num_val=1, size=(60, 80))
    cfg = Config.fromfile(VOC)
    sample_id = open(tmp_path / 'ImageSets' / 'Segmentation' / 'val.txt').read().split()[0]
    results = dict(img_path=str(tmp_path / 'JPEGImages' / f'{sample_id}.jpg'),
                   seg_map_path=str(tmp_path / 'SegmentationClass' / f'{sample_id}.png'),
                   reduce_zero_label=False, seg_fields=[])
    for step in cfg.val_dataloader.dataset.pipeline[:-1]:
        results = TRANSFORMS.build(step)(results)
    assert results['img'].shape[:2] == (60, 80) and results['gt_seg_map'].shape == (60, 80)
    # The MMSeg-network VOC config rescales the same image to 512 x 683 first.
    stock = Config.fromfile(MMSEG_VOC).val_dataloader.dataset.pipeline
    assert stock[1]['type'] == 'Resize' and tuple(stock[1]['scale']) == (2048, 512)

    train = cfg.train_dataloader.dataset
    for pipeline in (train.labeled.pipeline, train.unlabeled.pipeline, train.paste_pipeline):
        assert [t['type'] for t in pipeline if 'Resize' in t['type']] == ['TwoRangeRandomResize']
    random.seed(5)
    ratio = TRANSFORMS.build(train.labeled.pipeline[2]).draw_ratio()
    random.seed(5)
    results = dict(img_path=results['img_path'], seg_map_path=results['seg_map_path'],
                   reduce_zero_label=False, seg_fields=[])
    for step in train.labeled.pipeline[:3]:
        results = TRANSFORMS.build(step)(results)
    assert results['img_shape'] == (int(60 * ratio), int(80 * ratio))
    assert results['img'].shape[:2] == results['gt_seg_map'].shape == results['img_shape']


def _conv_bounds_hold(head):
    """PyTorch's default conv init: |w|, |b| <= 1 / sqrt(fan_in), weight std = bound / sqrt(3)."""
    for conv in (m for m in head.modules() if isinstance(m, torch.nn.Conv2d)):
        bound = 1 / math.sqrt(conv.weight[0].numel())
        if conv.weight.abs().max() > bound:
            return False
        if conv.weight.numel() > 10000 and \
                abs(conv.weight.std().item() / (bound / math.sqrt(3)) - 1) > 0.05:
            return False
        if conv.bias is not None and (conv.bias.abs().max() > bound or (conv.bias == 0).all()):
            return False
    return True


@pytest.mark.parametrize('head_key', ['decode_head', 'auxiliary_head'])
def test_heads_start_from_pytorchs_default_init(head_key):
    """The original's decoder and aux head are bare nn.Conv2d / BatchNorm2d, never
    re-initialised; mmseg's ConvModule would give Kaiming-normal (fan_out) instead."""
    init_default_scope('mmseg')
    head_cfg = Config.fromfile(CITY).model.segmentor[head_key]
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    assert _conv_bounds_hold(head)
    norms = [m for m in head.modules() if isinstance(m, _BatchNorm)]
    assert norms
    for norm in norms:
        assert (norm.weight == 1).all() and (norm.bias == 0).all()
    head_cfg.init_like_pytorch = False
    mmseg_head = MODELS.build(head_cfg)
    mmseg_head.init_weights()
    assert not _conv_bounds_hold(mmseg_head)  # the check can fail
