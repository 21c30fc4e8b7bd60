# AEL on the synthetic long-tailed toy dataset, on the CPU, from scratch: a
# DeepLabV3+ with a ResNet-18 backbone and slim heads, 4 labeled images (+ their
# 4 copy-paste sources) + 2 CutMix pairs per step (the dataset base's loader),
# 600 iterations. The tests' toy config; the CPU demo trains the UNet one,
# ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py.
#
# Differences from the paper's GPU configs, all because of the short schedule
# and training from scratch (docs/en/user_guides/train_test_resume.md, "The
# CPU demo"):
# - confidence bank tau 0.99 instead of 0.999 (time constant ~100 iterations
#   instead of ~1000, i.e. a tenth of the schedule in both cases);
# - OHEM min_kept 1400 instead of 100000: the same share (8.5%) of the labeled
#   pixels of a batch (4 x 64 x 64 here, 2 x 769 x 769 there);
# - a supervised warm-up before the unsupervised loss starts, then a ramp-up;
# - lr 0.05 for all parameters instead of the paper's 0.01 with 10x heads and
#   the 8-GPU loss scaling: 0.01 is a rate for fine-tuning an ImageNet
#   backbone, and these networks start from random weights;
# - no ImageNet weights: the demo needs no download.
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r50-d8.py',
    '../_base_/datasets/semi_longtail_toy_64x64.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]
num_classes = 10
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    segmentor=dict(
        pretrained=None,
        backbone=dict(depth=18, norm_cfg=norm_cfg),
        decode_head=dict(
            in_channels=512,
            channels=64,
            c1_in_channels=64,
            c1_channels=16,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            loss_decode=dict(min_kept=1400)),
        auxiliary_head=dict(
            in_channels=256,
            channels=32,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            loss_decode=dict(min_kept=1400))),
    confidence_bank=dict(momentum=0.99),
    # The three "stuff" classes tile every image: pasting them would cover it.
    copy_paste=dict(num_sampled_classes=1, excluded_classes=[0, 1, 2]),
    semi_train_cfg=dict(warmup_iters=200, rampup_iters=100))

max_iters = 600
# One process, one lr for all parameters, no loss scaling: the paper schedule's
# 8-GPU recipe (10x heads, lr / 8 and weight decay x 8) is for fine-tuning an
# ImageNet backbone with the original's per-GPU loss scaling, neither of which
# applies here.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=300)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=300, max_keep_ckpts=1))
custom_hooks = [
    dict(type='AELHook', log_interval=25),
    dict(type='FiniteLossHook'),
]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
# One process; seed 0 also fixes the data order (with diff_rank_seed mmengine
# would hand the sampler a drawn seed instead). Set diff_rank_seed=True when
# training a toy config on several processes, as the paper configs do.
randomness = dict(seed=0, diff_rank_seed=False)
