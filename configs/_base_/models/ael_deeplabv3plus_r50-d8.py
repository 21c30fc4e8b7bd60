# AEL around mmseg's stock DeepLabV3+ (ResNet-50-D8, OHEM + auxiliary FCN head
# as in the original code). Datasets set num_classes, crop size and the
# per-dataset ACP/ACM settings.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
custom_imports = dict(imports=['ael_mmseg'], allow_failed_imports=False)

segmentor = _base_.model
# The original's supervised loss: OHEM (thresh 0.7, min_kept 100000 per GPU batch)
# on both heads, averaged over the kept pixels (see ProbOhemCrossEntropyLoss for
# why not mmseg's OHEMPixelSampler).
segmentor.decode_head.loss_decode = dict(
    type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=1.0)
segmentor.auxiliary_head.loss_decode = dict(
    type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=0.4)
model = dict(
    _delete_=True,
    type='AELSegmentor',
    segmentor=segmentor,
    data_preprocessor=_base_.data_preprocessor,
    # Eq. 4, 7: tau = 0.999.
    confidence_bank=dict(momentum=0.999),
    # Eq. 10-13: DR (gamma) and AES (beta); the original's gamma2 = beta = 1.
    unsup_loss=dict(
        type='AELWeightedCELoss',
        gamma=2.0,
        beta=1.0,
        use_dynamic_reweighting=True,
        use_equalization_sampling=True),
    # Eq. 9: ACM; adaptive=False is the plain CutMix of the baseline.
    cutmix=dict(
        type='AdaptiveCutMix',
        adaptive=True,
        presence_area_thresh=0.01,
        component_area_thresh=0.005),
    # ACP: K classes, p = 0.5; excluded_classes is set per dataset.
    copy_paste=dict(type='AdaptiveCopyPaste', num_sampled_classes=3, prob=0.5),
    semi_train_cfg=dict(
        unsup_weight=1.0,
        unsup_on_labeled=True,
        pseudo_label_thresh=0.0,
        teacher_bn_mode='train',
        ema_momentum=0.99),
    semi_test_cfg=dict(predict_on='teacher'))

custom_hooks = [
    dict(type='TeacherEMAHook'),
    dict(type='ConfidenceBankHook', interval=50),
    dict(type='FiniteLossHook'),
]
