"""The original-network configs build the original AEL code's network, layer by layer.

The original (hzhupku/SemiSeg-AEL ``semseg/models/resnet.py``, ``decoder.py``,
``base.py``, ``model_helper.py`` with its released yaml: resnet101, multi_grid,
replace_stride_with_dilation [False, True, True], fpn, aux on layer3 at 1024
channels, dec_deeplabv3_plus at 256 channels, dilations 12/24/36) is re-stated
here in plain PyTorch and compared with the model our config builds: parameter
counts (total and per layer), output shapes at the two crop sizes for both heads,
and logits after copying the re-statement's weights into ours by a name map.
Full size throughout (ResNet-101, 769x769 and 513x513, batch 1).
"""
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from helpers.stock_tools import REPO_ROOT

CONFIGS = {
    'cityscapes': ('ael_original-deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py', 19),
    'voc12aug': ('ael_original-deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_16-513x513.py', 21),
}


# ---- the original network, re-stated -------------------------------------------------
def conv_bn_relu(cin, cout, k, dilation=1, bias=False, pool=False):
    layers = [nn.AdaptiveAvgPool2d(1)] if pool else []
    layers += [nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation,
                         bias=bias), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def make_layer(cin, planes, blocks, stride, dilations):
    """One stage; ``dilations`` per block (the original's previous_dilation * grid)."""
    downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                               nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(cin, planes, stride, dilations[0], downsample)]
    layers += [Bottleneck(planes * 4, planes, 1, d, None) for d in dilations[1:]]
    return nn.Sequential(*layers)


class OriginalResNet101(nn.Module):
    """Deep stem 64-64-128, ceil-mode max-pool; layer3 dilated (first block 1, then 2);
    layer4 dilated with multi-grid (2, 2, 4) x 2 after a first block at 2 x 2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.layer1 = make_layer(128, 64, 3, 1, [1] * 3)
        self.layer2 = make_layer(256, 128, 4, 2, [1] * 4)
        self.layer3 = make_layer(512, 256, 23, 1, [1] + [2] * 22)
        self.layer4 = make_layer(1024, 512, 3, 1, [2 * 2, 4 * 2, 4 * 4])

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return [x1, x2, x3, self.layer4(x3)]


class OriginalASPP(nn.Module):
    def __init__(self, cin=2048, inner=256, dilations=(12, 24, 36)):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, inner, 1, pool=True)
        self.conv2 = conv_bn_relu(cin, inner, 1)
        self.conv3 = conv_bn_relu(cin, inner, 3, dilations[0])
        self.conv4 = conv_bn_relu(cin, inner, 3, dilations[1])
        self.conv5 = conv_bn_relu(cin, inner, 3, dilations[2])

    def forward(self, x):
        pooled = F.interpolate(self.conv1(x), size=x.shape[2:], mode='bilinear',
                               align_corners=True)
        return torch.cat([pooled, self.conv2(x), self.conv3(x), self.conv4(x), self.conv5(x)], 1)


class OriginalDecoder(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.aspp = OriginalASPP()
        self.head = nn.Sequential(nn.Conv2d(1280, 256, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(256), nn.ReLU(inplace=True), nn.Dropout2d(0.1))
        self.final = nn.Conv2d(256, num_classes, 1)
        self.tail = nn.Sequential(
            nn.Conv2d(512, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
            nn.Dropout2d(0.1),
            nn.Conv2d(256, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
            nn.Dropout2d(0.1))
        self.low_conv = nn.Sequential(nn.Conv2d(256, 256, 1), nn.BatchNorm2d(256),
                                      nn.ReLU(inplace=True))

    def forward(self, feats):
        low = self.low_conv(feats[0])
        aspp = self.head(self.aspp(feats[3]))
        aspp = F.interpolate(aspp, size=low.shape[2:], mode='bilinear', align_corners=True)
        return self.final(self.tail(torch.cat([low, aspp], 1)))


class OriginalAux(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.aux = nn.Sequential(nn.Conv2d(1024, 256, 3, padding=1), nn.BatchNorm2d(256),
                                 nn.ReLU(inplace=True), nn.Dropout2d(0.1),
                                 nn.Conv2d(256, num_classes, 1))

    def forward(self, x):
        return self.aux(x)


class OriginalModel(nn.Module):
    """ModelBuilder with fpn=True and aux_loss: (main, aux) logits before upsampling."""

    def __init__(self, num_classes):
        super().__init__()
        self.encoder = OriginalResNet101()
        self.decoder = OriginalDecoder(num_classes)
        self.auxor = OriginalAux(num_classes)

    def forward(self, x):
        feats = self.encoder(x)
        return self.decoder(feats), self.auxor(feats[2])


# ---- original name -> our name --------------------------------------------------------
NAME_MAP = [
    (r'^encoder\.conv1\.(\d)\.', r'backbone.stem.\1.'),
    (r'^encoder\.bn1\.', 'backbone.stem.7.'),
    (r'^encoder\.(layer\d)\.', r'backbone.\1.'),
    (r'^decoder\.aspp\.conv1\.1\.', 'decode_head.image_pool.1.conv.'),
    (r'^decoder\.aspp\.conv1\.2\.', 'decode_head.image_pool.1.bn.'),
    (r'^decoder\.aspp\.conv([2-5])\.0\.', lambda m: f'decode_head.aspp_modules.'
     f'{int(m.group(1)) - 2}.conv.'),
    (r'^decoder\.aspp\.conv([2-5])\.1\.', lambda m: f'decode_head.aspp_modules.'
     f'{int(m.group(1)) - 2}.bn.'),
    (r'^decoder\.head\.0\.', 'decode_head.bottleneck.conv.'),
    (r'^decoder\.head\.1\.', 'decode_head.bottleneck.bn.'),
    (r'^decoder\.low_conv\.0\.', 'decode_head.c1_bottleneck.conv.'),
    (r'^decoder\.low_conv\.1\.', 'decode_head.c1_bottleneck.bn.'),
    (r'^decoder\.tail\.0\.', 'decode_head.fusion_convs.0.conv.'),
    (r'^decoder\.tail\.1\.', 'decode_head.fusion_convs.0.bn.'),
    (r'^decoder\.tail\.4\.', 'decode_head.fusion_convs.2.conv.'),
    (r'^decoder\.tail\.5\.', 'decode_head.fusion_convs.2.bn.'),
    (r'^decoder\.final\.', 'decode_head.conv_seg.'),
    (r'^auxor\.aux\.0\.', 'auxiliary_head.convs.0.conv.'),
    (r'^auxor\.aux\.1\.', 'auxiliary_head.convs.0.bn.'),
    (r'^auxor\.aux\.4\.', 'auxiliary_head.conv_seg.'),
]


def our_name(original_name):
    for pattern, repl in NAME_MAP:
        if re.match(pattern, original_name):
            return re.sub(pattern, repl, original_name)
    raise KeyError(f'no rule for {original_name}')


def build_ours(dataset):
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'ael', CONFIGS[dataset][0]))
    segmentor = cfg.model.segmentor
    segmentor.pretrained = None  # the ImageNet file is not on this machine; weights copied below
    # SyncBN needs a process group to run; the layers and parameters are BN's.
    return revert_sync_batchnorm(MODELS.build(segmentor))


def module_counts(model, rename=lambda n: n):
    counts = {}
    for name, param in model.named_parameters():
        module = rename(name).rsplit('.', 1)[0]
        counts[module] = counts.get(module, 0) + param.numel()
    return counts


_models = {}


def original_and_ours(dataset):
    """(original, ours) in eval mode, built once per dataset."""
    if dataset not in _models:
        _models.clear()
        _models[dataset] = _build_pair(dataset)
    return _models[dataset]


def _build_pair(dataset):
    torch.manual_seed(0)
    num_classes = CONFIGS[dataset][1]
    original = OriginalModel(num_classes)
    # Statistics and affine parameters away from 1/0, so that eval-mode BN is not identity.
    for m in original.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.2, 0.6)
            nn.init.uniform_(m.bias, -0.1, 0.1)
    return original.eval(), build_ours(dataset).eval()


@pytest.fixture(params=list(CONFIGS))
def models(request):
    return (request.param, ) + original_and_ours(request.param)


def test_parameter_counts_are_equal_in_total_and_per_layer(models):
    dataset, original, ours = models
    total = sum(p.numel() for p in original.parameters())
    assert sum(p.numel() for p in ours.parameters()) == total
    assert total == {'cityscapes': 64_987_622, 'voc12aug': 64_988_650}[dataset]
    assert module_counts(original, our_name) == module_counts(ours)
    for original_part, our_part in (('encoder', 'backbone'), ('decoder', 'decode_head'),
                                    ('auxor', 'auxiliary_head')):
        assert sum(p.numel() for p in getattr(original, original_part).parameters()) == \
            sum(p.numel() for p in getattr(ours, our_part).parameters()), our_part


def test_the_name_map_covers_every_tensor_both_ways(models):
    _, original, ours = models
    mapped = {our_name(k): v.shape for k, v in original.state_dict().items()}
    assert mapped == {k: v.shape for k, v in ours.state_dict().items()}


# Each dataset at its crop, Cityscapes also at VOC's: both sizes for the shared network.
@pytest.mark.parametrize('dataset,size', [('cityscapes', 769), ('cityscapes', 513),
                                          ('voc12aug', 513)])
def test_outputs_have_equal_shapes_and_logits(dataset, size):
    original, ours = original_and_ours(dataset)
    ours.load_state_dict({our_name(k): v for k, v in original.state_dict().items()})
    torch.manual_seed(1)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        main_original, aux_original = original(x)
        feats = ours.extract_feat(x)
        main_ours, aux_ours = ours.decode_head(feats), ours.auxiliary_head(feats)
        upsampled = ours.encode_decode(x, [dict(img_shape=(size, size))])
    quarter, eighth = (size - 1) // 4 + 1, (size - 1) // 8 + 1
    num_classes = CONFIGS[dataset][1]
    assert main_ours.shape == main_original.shape == (1, num_classes, quarter, quarter)
    assert aux_ours.shape == aux_original.shape == (1, num_classes, eighth, eighth)
    assert main_original.abs().max() > 1e-2  # not a degenerate all-zero comparison
    torch.testing.assert_close(main_ours, main_original, rtol=0, atol=1e-5)
    torch.testing.assert_close(aux_ours, aux_original, rtol=0, atol=1e-5)
    # The segmentor's own path: upsampled to the input as the original's ModelBuilder does.
    expected = F.interpolate(main_original, size=(size, size), mode='bilinear',
                             align_corners=True)
    torch.testing.assert_close(upsampled, expected, rtol=0, atol=1e-5)
    assert resize(aux_ours, (size, size), mode='bilinear', align_corners=True).shape == \
        (1, num_classes, size, size)
