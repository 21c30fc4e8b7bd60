"""The paper configs as shipped, shrunk only where the CPU forces it.

What may change (the rest is the shipped config): backbone depth and head
widths, crop and test window, iterations, data roots and loader workers; the
ImageNet download is replaced by a local stand-in file of the same format.
"""
import glob
import os.path as osp
from typing import Dict, List

import torch

from .stock_tools import REPO_ROOT

# The Cityscapes and VOC configs of the paper's tables (AEL, baselines, ablations).
PAPER_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'ael*', '*.py'))
    if '_cityscapes-' in osp.basename(p) or '_voc12aug-' in osp.basename(p))

# ResNetV1c-18 instead of -101 and slim heads: channels follow the depth.
SMALL_MODEL = {
    'backbone.depth': 18,
    'decode_head.in_channels': 512,
    'decode_head.channels': 16,
    'decode_head.c1_in_channels': 64,
    'decode_head.c1_channels': 8,
    'auxiliary_head.in_channels': 256,
    'auxiliary_head.channels': 16,
}


def save_standin_pretrained(path: str, depth: int = 18, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Save a random ResNetV1c state dict where a config names ImageNet weights.

    The file has the format of ``open-mmlab://resnet101_v1c`` (a plain state
    dict of the backbone), so mmengine's ``Pretrained`` init loads it the same
    way. Returns the saved tensors.
    """
    from mmseg.models.backbones import ResNetV1c
    torch.manual_seed(seed)
    backbone = ResNetV1c(depth=depth)
    # Non-trivial BN statistics, so that a test can tell them from the defaults.
    for name, buffer in backbone.named_buffers():
        if name.endswith(('running_mean', 'running_var')):
            buffer.uniform_(0.5, 1.5)
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    torch.save(state, path)
    return state


def small_model_options(pretrained: str, prefix: str = 'model.segmentor.') -> List[str]:
    """``--cfg-options`` for the slim model with the stand-in weights."""
    return [f'{prefix}pretrained={pretrained}'] + [
        f'{prefix}{key}={value}' for key, value in SMALL_MODEL.items()]


def shrink_model_cfg(model_cfg, pretrained: str):
    """The same as :func:`small_model_options`, applied to a model config in place."""
    segmentor = model_cfg['segmentor']
    segmentor['pretrained'] = pretrained
    for key, value in SMALL_MODEL.items():
        head, name = key.split('.')
        segmentor[head][name] = value
    return model_cfg
