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


def tiny_paper_options(root: str, scale: str, pretrained: str, sliding: bool) -> List[str]:
    """A paper config as a ResNet-18 DeepLabV3+ on 64x64 crops of ``root``; 4 iterations.

    ``scale``: the images' size for the resize steps, e.g. ``'(128,64)'``;
    ``sliding``: the config tests in sliding windows (Cityscapes), whose
    window and stride shrink with the images; otherwise (VOC) crops are padded
    to the shrunk crop. The loaders keep the config's workers.
    """
    options = small_model_options(pretrained) + [
        'model.data_preprocessor.size=[64,64]',
        'train_cfg.max_iters=4', 'train_cfg.val_interval=2', 'param_scheduler.0.end=4',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'custom_hooks.0.log_interval=1',
    ]
    # labeled/paste pipelines: 2 = RandomResize, 3 = RandomCrop; unlabeled: 1, 2
    for part, resize, crop in (('labeled.pipeline', 2, 3), ('paste_pipeline', 2, 3),
                               ('unlabeled.pipeline', 1, 2)):
        options += [f'train_dataloader.dataset.{part}.{resize}.scale={scale}',
                    f'train_dataloader.dataset.{part}.{crop}.crop_size=(64,64)']
    for part in ('labeled', 'unlabeled'):
        options.append(f'train_dataloader.dataset.{part}.data_root={root}')
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}',
                    f'{loader}.dataset.pipeline.1.scale={scale}']
    if sliding:  # the paper's 769 window, stride 513 (2/3) scaled to the 64x128 images
        options += ['model.segmentor.test_cfg.crop_size=(48,48)',
                    'model.segmentor.test_cfg.stride=(32,32)']
    else:  # VOC pads every crop to 513: pad to the shrunk crop instead
        for part, pad in (('labeled.pipeline', 5), ('paste_pipeline', 5),
                          ('unlabeled.pipeline', 4)):
            options.append(f'train_dataloader.dataset.{part}.{pad}.size=(64,64)')
    # OHEM keeps the same share of a GPU batch's labeled pixels as the paper's
    # 100000 of 2 x 769^2 (or 2 x 513^2): unscaled, it would keep every pixel.
    paper_crop = 769 if sliding else 513
    min_kept = round(100000 * 64**2 / paper_crop**2)
    for head in ('decode_head', 'auxiliary_head'):
        options.append(f'model.segmentor.{head}.loss_decode.min_kept={min_kept}')
    return options
