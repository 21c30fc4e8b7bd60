# AEL around mmseg's stock DeepLabV3+ (ResNet-50-D8, OHEM + auxiliary FCN head
# as in the original code), with the paper's AEL settings. Dataset model bases
# (./ael_deeplabv3plus_r101-d8_cityscapes.py, ..._voc12aug.py) and the toy and
# template configs set num_classes, the backbone and the per-dataset ACP/ACM
# settings.
#
# The segmentor is mmseg's configs/_base_/models/deeplabv3plus_r50-d8.py written
# out, not inherited, so that no config is more than 4 files deep (config,
# dataset model base, this file -- an mmseg:: base would be a 4th level under
# it); tests/test_configs/test_config_layout.py checks that it equals mmseg's
# apart from the OHEM losses.
custom_imports = dict(imports=['ael_mmseg'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
# The original's supervised loss: OHEM (thresh 0.7, min_kept 100000 per GPU batch)
# on both heads, averaged over the kept pixels (see ProbOhemCrossEntropyLoss for
# why not mmseg's OHEMPixelSampler); mmseg's base has plain cross entropy.
segmentor = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='DepthwiseSeparableASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        c1_in_channels=256,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
model = dict(
    type='AELSegmentor',
    segmentor=segmentor,
    data_preprocessor=data_preprocessor,
    # Eq. 4, 7: tau = 0.999.
    confidence_bank=dict(momentum=0.999),
    # Eq. 10-13: DR (gamma) and AES (beta); the original's gamma2 = beta = 1.
    unsup_loss=dict(
        type='AELWeightedCELoss',
        gamma=2.0,
        beta=1.0,
        use_dynamic_reweighting=True,
        use_equalization_sampling=True),
    # Eq. 9: ACM. dict(_delete_=True, type='CutMix') is the plain CutMix of the baseline.
    cutmix=dict(
        type='AdaptiveCutMix',
        presence_area_thresh=0.01,
        component_area_thresh=0.005),
    # ACP: K classes, p = 0.5; excluded_classes is set per dataset. Applied iff the
    # batch has copy-paste sources, i.e. train_dataloader.dataset.paste_pipeline is set.
    copy_paste=dict(type='AdaptiveCopyPaste', num_sampled_classes=3, prob=0.5),
    semi_train_cfg=dict(
        unsup_weight=1.0,
        unsup_on_labeled=True,
        pseudo_label_thresh=0.0,
        teacher_bn_mode='train',
        ema_momentum=0.99),
    semi_test_cfg=dict(predict_on='teacher'))

# AELHook: teacher EMA, bank update, host-side ACM source state, bank logging
# (CutMix mean teachers: the EMA only). The baselines and ablations inherit it.
custom_hooks = [
    dict(type='AELHook', log_interval=50),
    dict(type='FiniteLossHook'),
]
