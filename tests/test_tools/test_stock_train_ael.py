"""AEL through the stock MMSeg train script, with three different stock models."""
import glob
import json
import os.path as osp
import textwrap

import pytest

from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.stock_tools import REPO_ROOT, TOY_CONFIG, run_stock_tool, tiny_toy_options

MAIN_JOB = osp.join(REPO_ROOT, 'configs/ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py')

# Student configs of three families (tiny sizes); everything else is the toy
# AEL config, so the plugin must work with any EncoderDecoder.
MODELS = {
    'deeplabv3plus_r18': None,  # the config's own model
    'pspnet_r18': """
        dict(type='EncoderDecoder', pretrained=None,
             backbone=dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                           dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
                           norm_eval=False, style='pytorch', contract_dilation=True),
             decode_head=dict(type='PSPHead', in_channels=512, in_index=3, channels=32,
                              pool_scales=(1, 2, 3, 6), dropout_ratio=0.1, num_classes=10,
                              norm_cfg=norm_cfg, align_corners=False,
                              loss_decode=dict(type='ProbOhemCrossEntropyLoss', thresh=0.7,
                                               min_kept=700, loss_weight=1.0)),
             auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=16,
                                 num_convs=1, concat_input=False, dropout_ratio=0.1,
                                 num_classes=10, norm_cfg=norm_cfg, align_corners=False,
                                 loss_decode=dict(type='ProbOhemCrossEntropyLoss', thresh=0.7,
                                                  min_kept=700, loss_weight=0.4)),
             train_cfg=dict(), test_cfg=dict(mode='whole'))""",
    'segformer_mit': """
        dict(type='EncoderDecoder', pretrained=None,
             backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=16,
                           num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                           patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                           out_indices=(0, 1, 2, 3), mlp_ratio=2, qkv_bias=True,
                           drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
             decode_head=dict(type='SegformerHead', in_channels=[16, 16, 32, 32],
                              in_index=[0, 1, 2, 3], channels=32, dropout_ratio=0.1,
                              num_classes=10, norm_cfg=norm_cfg, align_corners=False,
                              loss_decode=dict(type='ProbOhemCrossEntropyLoss', thresh=0.7,
                                               min_kept=700, loss_weight=1.0)),
             train_cfg=dict(), test_cfg=dict(mode='whole'))""",
}
# The toy configs' OHEM keeps 8.5% of a batch's labeled pixels (1400 of 4 x 64 x 64);
# the students above keep the same share of the 2 x 64 x 64 here.


def _config(tmp_path, name):
    if MODELS[name] is None:
        return TOY_CONFIG
    path = tmp_path / f'{name}.py'
    student = textwrap.dedent(MODELS[name]).strip()
    path.write_text(f"_base_ = ['{TOY_CONFIG}']\n"
                    "norm_cfg = dict(type='BN', requires_grad=True)\n"
                    f"model = dict(segmentor=dict(_delete_=True, **{student}))\n")
    return str(path)


def _scalars(work_dir):
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalar log in {work_dir}'
    return [json.loads(line) for line in open(files[0]) if line.strip()]


@pytest.mark.parametrize('name', sorted(MODELS))
def test_ael_trains_validates_and_checkpoints_through_stock_train(tmp_path, toy_root, name):
    work_dir = tmp_path / 'work'
    log = run_stock_tool('train.py', [_config(tmp_path, name), '--work-dir', str(work_dir),
                                      '--cfg-options', *tiny_toy_options(toy_root)],
                         cwd=str(tmp_path))
    # Losses of both branches were computed and logged.
    assert 'sup.decode.loss_ce' in log and 'unsup.loss_ael' in log
    records = _scalars(str(work_dir))
    validations = [r for r in records if 'teacher/mIoU' in r]
    assert len(validations) == 2 and all('student/mIoU' in r for r in validations)
    assert any(k.startswith('teacher/IoU.') for k in validations[-1])
    # Bank series were written through the visualizer.
    assert any('ael/conf/red_disc' in r for r in records)
    checkpoint = load_checkpoint_file(work_dir / 'iter_4.pth')
    state = checkpoint['state_dict']
    assert 'confidence_bank.ema' in state and 'cutmix.presence' in state
    assert state['cutmix.presence'].shape == (10, 8)  # classes x unlabeled images
    assert state['confidence_bank.num_updates'].sum() > 0
    assert any(k.startswith('teacher.') for k in state)
    # Exact-resume state beyond model and optimizer: the key seed and the ACM lag history.
    ael_state = checkpoint['ael_state']
    assert isinstance(ael_state['key_seed'], int)
    acm = ael_state['acm_source']
    assert acm['lag'] == 4 and acm['base_step'] + len(acm['steps']) == 4
    assert acm['base_presence'].shape == (10, 8)


def test_bank_series_reach_tensorboard(tmp_path, toy_root):
    """Also the one run with the config's own data-loader workers (2, persistent)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = tmp_path / 'toy_tensorboard.py'
    config.write_text(f"_base_ = ['{TOY_CONFIG}']\n"
                      "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),\n"
                      "                                dict(type='TensorboardVisBackend')])\n")
    work_dir = tmp_path / 'work'
    shipped_workers = []
    for loader in ('train_dataloader', 'val_dataloader'):
        shipped_workers += [f'{loader}.num_workers=2', f'{loader}.persistent_workers=True']
    run_stock_tool('train.py', [str(config), '--work-dir', str(work_dir), '--cfg-options',
                                *tiny_toy_options(toy_root), *shipped_workers],
                   cwd=str(tmp_path))
    events = glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'events.out.tfevents.*'))
    assert events, 'no TensorBoard event file'
    accumulator = EventAccumulator(events[0])
    accumulator.Reload()
    tags = set(accumulator.Tags()['scalars'])
    for series in ('conf', 'acm_prob', 'acp_prob', 'aes_rate'):
        assert f'ael/{series}/red_disc' in tags, series
    assert len(accumulator.Scalars('ael/conf/red_disc')) == 4  # every iteration (interval 1)
    assert {'teacher/mIoU', 'student/mIoU', 'teacher/IoU.thin_pole'} <= tags


def test_main_job_config_keeps_its_warmup_and_rampup(tmp_path, toy_root):
    """The README's main job (UNet toy config) with its supervised warm-up and ramp-up on.

    Shipped: 1600 iterations, warm-up 800, ramp-up 200; here 6 iterations, warm-up 3 and
    ramp-up 2 (the schedule shrunk, the remedies kept): the unsupervised losses must be
    absent for the first 3 iterations and present from the 4th.
    """
    work_dir = tmp_path / 'work'
    options = tiny_toy_options(toy_root, max_iters=6, val_interval=3) + [
        'model.semi_train_cfg.warmup_iters=3', 'model.semi_train_cfg.rampup_iters=2']
    run_stock_tool('train.py', [MAIN_JOB, '--work-dir', str(work_dir), '--cfg-options',
                                *options], cwd=str(tmp_path))
    per_iter = {r['iter']: r for r in _scalars(str(work_dir)) if 'loss' in r}
    assert sorted(per_iter) == [1, 2, 3, 4, 5, 6]
    for it in (1, 2, 3):
        assert 'unsup.loss_ael' not in per_iter[it] and 'sup.decode.loss_ce' in per_iter[it]
    for it in (4, 5, 6):
        assert {'unsup.loss_ael', 'unsup.loss_ael_labeled'} <= set(per_iter[it]), it
    validations = [r for r in _scalars(str(work_dir)) if 'teacher/mIoU' in r]
    assert len(validations) == 2
