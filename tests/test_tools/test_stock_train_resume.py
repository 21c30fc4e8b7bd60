"""The stock MMSeg train script on our stack: `mmseg::` bases, save, --resume."""
import glob
import os.path as osp
import textwrap

import torch

from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.stock_tools import run_stock_tool

PLAIN_CONFIG = """
_base_ = ['mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['ael_mmseg'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(32, 32)),
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=16, num_convs=1, num_classes=10,
                     dropout_ratio=0.0, norm_cfg=norm_cfg),
    auxiliary_head=None)
data_root = '{root}'
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='LongTailToyDataset', data_root=data_root,
                 data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                 ann_file='splits/labeled.txt', pipeline=pipeline))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end=6, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6, val_interval=100)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0, deterministic=True)
"""


def _state(path):
    return load_checkpoint_file(path)


def test_stock_train_saves_resumes_and_continues_exactly(tmp_path, toy_root):
    config = tmp_path / 'fcn_r18_toy.py'
    config.write_text(textwrap.dedent(PLAIN_CONFIG.format(root=toy_root)))
    straight, stopped = tmp_path / 'straight', tmp_path / 'stopped'
    run_stock_tool('train.py', [str(config), '--work-dir', str(straight)], cwd=str(tmp_path))
    # A run stopped after the iteration-4 checkpoint, then resumed to 6.
    run_stock_tool('train.py', [str(config), '--work-dir', str(stopped), '--cfg-options',
                                'train_cfg.max_iters=4'], cwd=str(tmp_path))
    assert not osp.exists(stopped / 'iter_6.pth')
    log = run_stock_tool('train.py', [str(config), '--work-dir', str(stopped), '--resume'],
                         cwd=str(tmp_path))
    assert 'resumed' in log.lower() or 'Resumed' in log
    resumed = _state(stopped / 'iter_6.pth')
    reference = _state(straight / 'iter_6.pth')
    # The resumed run starts at iteration 4 and ends at 6.
    assert resumed['meta']['iter'] == 6
    logs = sorted(glob.glob(str(stopped / '*' / '*.log')))
    assert 'Iter(train) [5/6]' in open(logs[-1]).read()
    assert 'Iter(train) [1/6]' not in open(logs[-1]).read()
    for key, value in reference['state_dict'].items():
        assert torch.allclose(resumed['state_dict'][key].float(), value.float(), atol=1e-5), key


def test_semi_seg_loop_leaves_another_sampler_to_mmengine_replay(tmp_path, toy_root):
    config = tmp_path / 'fcn_r18_toy.py'
    config.write_text(textwrap.dedent(PLAIN_CONFIG.format(root=toy_root)))
    loop = ['--cfg-options', 'train_cfg.type=SemiSegIterBasedTrainLoop']
    straight, stopped = tmp_path / 'straight', tmp_path / 'stopped'
    run_stock_tool('train.py', [str(config), '--work-dir', str(straight), *loop],
                   cwd=str(tmp_path))
    run_stock_tool('train.py', [str(config), '--work-dir', str(stopped), *loop,
                                'train_cfg.max_iters=4'], cwd=str(tmp_path))
    log = run_stock_tool('train.py', [str(config), '--work-dir', str(stopped), '--resume',
                                      *loop], cwd=str(tmp_path))
    assert 'Advance dataloader 4 steps' in log and 'SemiSegSampler starts' not in log
    resumed, reference = _state(stopped / 'iter_6.pth'), _state(straight / 'iter_6.pth')
    for key, value in reference['state_dict'].items():
        assert torch.allclose(resumed['state_dict'][key].float(), value.float(), atol=1e-5), key
