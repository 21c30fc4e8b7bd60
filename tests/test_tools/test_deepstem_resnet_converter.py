"""tools/model_converters/deepstem_resnet_to_mmseg.py on a stand-in of the original's checkpoint.

The stand-in has the key names and shapes of PyTorch-Encoding's deep-stem
``resnet101-2a57e44d.pth`` (torchvision layout, stem ``conv1.0/1/3/4/6`` +
``bn1``, classifier ``fc``) with random values; the converted file is loaded
through the original-network config's ``pretrained`` (mmengine's Pretrained init).
"""
import importlib.util
import logging
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from helpers.stock_tools import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'ael',
                  'ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py')


def _tool():
    path = osp.join(REPO_ROOT, 'tools', 'model_converters', 'deepstem_resnet_to_mmseg.py')
    spec = importlib.util.spec_from_file_location('deepstem_resnet_to_mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bn(prefix, channels, with_counter):
    tensors = {f'{prefix}.weight': torch.rand(channels), f'{prefix}.bias': torch.randn(channels),
               f'{prefix}.running_mean': torch.randn(channels),
               f'{prefix}.running_var': torch.rand(channels) + 0.5}
    if with_counter:
        tensors[f'{prefix}.num_batches_tracked'] = torch.tensor(7)
    return tensors


def original_resnet101_checkpoint(with_counter=True):
    """Random tensors under the original checkpoint's names and shapes."""
    torch.manual_seed(0)
    sd = OrderedDict()
    sd['conv1.0.weight'] = torch.randn(64, 3, 3, 3)
    sd.update(_bn('conv1.1', 64, with_counter))
    sd['conv1.3.weight'] = torch.randn(64, 64, 3, 3)
    sd.update(_bn('conv1.4', 64, with_counter))
    sd['conv1.6.weight'] = torch.randn(128, 64, 3, 3)
    sd.update(_bn('bn1', 128, with_counter))
    inplanes = 128
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 23, 3)), 1):
        for block in range(blocks):
            p = f'layer{stage}.{block}'
            sd[f'{p}.conv1.weight'] = torch.randn(planes, inplanes, 1, 1)
            sd.update(_bn(f'{p}.bn1', planes, with_counter))
            sd[f'{p}.conv2.weight'] = torch.randn(planes, planes, 3, 3)
            sd.update(_bn(f'{p}.bn2', planes, with_counter))
            sd[f'{p}.conv3.weight'] = torch.randn(planes * 4, planes, 1, 1)
            sd.update(_bn(f'{p}.bn3', planes * 4, with_counter))
            if block == 0:
                sd[f'{p}.downsample.0.weight'] = torch.randn(planes * 4, inplanes, 1, 1)
                sd.update(_bn(f'{p}.downsample.1', planes * 4, with_counter))
            inplanes = planes * 4
    sd['fc.weight'] = torch.randn(1000, 2048)
    sd['fc.bias'] = torch.randn(1000)
    return sd


def _segmentor_cfg(pretrained):
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG).model.segmentor
    cfg.pretrained = pretrained
    return cfg


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize('with_counter', [True, False], ids=['with-bn-counters', 'pre-1.0'])
def test_every_key_maps_to_the_backbone_with_its_shape(with_counter):
    source = original_resnet101_checkpoint(with_counter)
    converted = _tool().convert_deepstem_resnet(source)
    backbone = MODELS.build(_segmentor_cfg(None)).backbone.state_dict()
    expected = {k: v.shape for k, v in backbone.items()
                if with_counter or not k.endswith('num_batches_tracked')}
    assert {k: v.shape for k, v in converted.items()} == expected
    # Nothing left over: the only source tensors not in the output are the classifier's.
    assert len(source) - len(converted) == 2
    assert all(any(v is s for s in source.values()) for v in converted.values())


def test_unknown_keys_are_refused_by_name():
    source = original_resnet101_checkpoint()
    source['aspp.conv.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='aspp.conv.weight'):
        _tool().convert_deepstem_resnet(source)


def test_converted_file_loads_through_pretrained_without_warnings(tmp_path, capsys):
    source_file, converted_file = tmp_path / 'resnet101-2a57e44d.pth', tmp_path / 'mmseg.pth'
    source = original_resnet101_checkpoint(with_counter=False)
    torch.save(source, source_file)
    _tool().main([str(source_file), str(converted_file)])
    assert '530 tensors written' in capsys.readouterr().out

    model = revert_sync_batchnorm(MODELS.build(_segmentor_cfg(str(converted_file))))
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(converted_file))
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(records)
    assert not [m for m in records.messages if 'key' in m], records.messages
    loaded = model.backbone.state_dict()
    converted = _tool().convert_deepstem_resnet(source)
    for key, value in converted.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
