# The README's main job: AEL on the synthetic long-tailed toy dataset, on the
# CPU, from scratch, with MMSeg's stock UNet backbone and FCN head.
#
# Same data, sampler, AEL parts, bank settings and optimiser as the DeepLabV3+
# toy config ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py (which the
# tests use; written out here rather than inherited, so that the baselines of
# this config stay within 4 levels of inheritance). What changes and why:
# - UNet (4 stages, 16 base channels, FCN head at full resolution) instead of
#   DeepLabV3+ R18-D8: cheaper per step on the CPU (compare with
#   tools/analysis_tools/benchmark_train_step.py --device cpu --config CONFIG),
#   and its logits are at full resolution, where DeepLabV3+'s are at 1/4: the
#   tail objects are 3-30 pixels;
# - 1600 iterations with the original's OHEM supervised loss (below, min_kept
#   scaled to the batch): from scratch, the tail classes need about half of
#   that schedule before they appear in validation (each validation's
#   teacher/IoU.<class> scalars in the work dir's vis_data show when);
# - the first half is a supervised warm-up (the from-scratch remedy), then the
#   unsupervised weight ramps up over 200 iterations;
# - pseudo-labels below 0.7 teacher confidence are ignored (the original's VOC
#   setting) so that early, unsure pseudo-labels do not overwrite tail pixels.
# The supervised and CutMix mean-teacher baselines (configs/ael_baselines/)
# use the same model, schedule and remedies.
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
        _delete_=True,
        type='EncoderDecoder',
        pretrained=None,
        backbone=dict(
            type='UNet',
            in_channels=3,
            base_channels=16,
            num_stages=4,
            strides=(1, 1, 1, 1),
            enc_num_convs=(2, 2, 2, 2),
            dec_num_convs=(2, 2, 2),
            downsamples=(True, True, True),
            enc_dilations=(1, 1, 1, 1),
            dec_dilations=(1, 1, 1),
            with_cp=False,
            conv_cfg=None,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'),
            upsample_cfg=dict(type='InterpConv'),
            norm_eval=False),
        decode_head=dict(
            type='FCNHead',
            in_channels=16,
            in_index=3,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=1400, loss_weight=1.0)),
        auxiliary_head=dict(
            type='FCNHead',
            in_channels=32,
            in_index=2,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=1400, loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole')),
    # As the DeepLabV3+ toy config: tau 0.99, no pasting of the "stuff" classes.
    confidence_bank=dict(momentum=0.99),
    copy_paste=dict(num_sampled_classes=1, excluded_classes=[0, 1, 2]),
    semi_train_cfg=dict(warmup_iters=800, rampup_iters=200, pseudo_label_thresh=0.7))

max_iters = 1600
# As the DeepLabV3+ toy config: one process, one lr (0.05) for all parameters.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=800)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=800, max_keep_ckpts=1))
custom_hooks = [
    dict(type='AELHook', log_interval=25),
    dict(type='FiniteLossHook'),
]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, diff_rank_seed=False)
