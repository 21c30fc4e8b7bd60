# AEL, DeepLabV3+ R101-D8, Pascal VOC 2012 aug 513x513, 30k iterations, 8 GPUs x (2
# labeled + 1 CutMix pair), partition 1/32 (331 labeled images), fold 0.
# lr 0.001 as in the paper (the released config used 0.01). ACP K=1 with no excluded class
# (the original excluded Cityscapes ids on VOC by mistake); ACM thresholds 0.03; teacher
# pseudo-labels below 0.7 confidence ignored (the original's VOC config).
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r50-d8.py',
    '../_base_/datasets/semi_voc12aug_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]
num_classes = 21
crop_size = (513, 513)
model = dict(
    data_preprocessor=dict(size=crop_size),
    segmentor=dict(
        pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(depth=101),
        decode_head=dict(num_classes=num_classes),
        auxiliary_head=dict(num_classes=num_classes)),
    copy_paste=dict(num_sampled_classes=1, excluded_classes=[]),
    cutmix=dict(presence_area_thresh=0.03, component_area_thresh=0.03),
    semi_train_cfg=dict(pseudo_label_thresh=0.7))
optim_wrapper = dict(optimizer=dict(lr=0.001))
max_iters = 30000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=3000)
