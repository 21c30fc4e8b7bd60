"""A paper config's ImageNet weights reach the student's and the teacher's backbones.

The configs name ``pretrained='open-mmlab://resnet101_v1c'``; here a saved random
ResNetV1c state dict of the same format stands in for the download, on the
shipped configs with the backbone shrunk to depth 18.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ael_mmseg.models.segmentors.mean_teacher_segmentor import without_pretrained_weights
from helpers.paper_configs import save_standin_pretrained, shrink_model_cfg
from helpers.stock_tools import REPO_ROOT

CONFIGS = [
    'configs/ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py',
    'configs/ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_32-513x513.py',
    'configs/ael_baselines/supervised_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py',
]


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_pretrained_weights_reach_student_and_teacher(config, tmp_path):
    init_default_scope('mmseg')
    path = str(tmp_path / 'resnet18_v1c_standin.pth')
    saved = save_standin_pretrained(path, seed=3)
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    assert cfg.model.segmentor.pretrained == 'open-mmlab://resnet101_v1c'  # as shipped
    model = MODELS.build(shrink_model_cfg(copy.deepcopy(cfg.model), path))
    backbone = model.student.backbone.state_dict()
    assert not torch.equal(backbone['stem.0.weight'], saved['stem.0.weight'])
    model.init_weights()
    backbone = model.student.backbone.state_dict()
    assert set(saved) == set(backbone)
    for key, value in saved.items():
        assert torch.equal(backbone[key], value), key
    # The teacher starts as the student's copy: backbone and heads.
    teacher = model.teacher.state_dict()
    for key, value in model.student.state_dict().items():
        assert torch.equal(teacher[key], value), key


def test_teacher_config_loads_no_weights_of_its_own():
    segmentor = dict(
        type='EncoderDecoder', pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(type='ResNetV1c', depth=101),
        decode_head=dict(type='FCNHead', num_classes=3))
    teacher = without_pretrained_weights(segmentor)
    assert 'pretrained' not in teacher
    assert segmentor['pretrained'] == 'open-mmlab://resnet101_v1c'  # the student's is kept
    swin_style = dict(segmentor, pretrained=None, backbone=dict(
        type='SwinTransformer', init_cfg=dict(type='Pretrained', checkpoint='swin.pth')))
    teacher = without_pretrained_weights(swin_style)
    assert teacher['backbone']['init_cfg'] is None
    assert swin_style['backbone']['init_cfg']['checkpoint'] == 'swin.pth'
