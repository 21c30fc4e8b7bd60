# AEL, DeepLabV3+ R101-D8, Cityscapes 769x769, 18k iterations, 8 GPUs x (2 labeled crops +
# 1 CutMix pair of unlabeled images), partition 1/32 (93 labeled images), fold 0.
# Paper: Hu et al., NeurIPS 2021.
# Hyper-parameters: the original's lr 0.01 (heads 10x), SGD momentum 0.9, wd 1e-4, poly 0.9,
# folded with its 8-GPU loss scaling (../_base_/schedules/ael_schedule.py); tau 0.999; gamma 2;
# ACP K=3, p=0.5, Cityscapes "stuff" excluded (road, sidewalk, building, vegetation, sky);
# ACM presence threshold 0.01, component threshold 0.005; OHEM (0.7, 100000) + aux 0.4;
# sliding-window single-scale test. ImageNet-pretrained ResNet-101 (downloaded at run time).
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r50-d8.py',
    '../_base_/datasets/semi_cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]
crop_size = (769, 769)
model = dict(
    data_preprocessor=dict(size=crop_size),
    segmentor=dict(
        pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(depth=101),
        decode_head=dict(align_corners=True),
        auxiliary_head=dict(align_corners=True),
        test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513))),
    copy_paste=dict(num_sampled_classes=3, excluded_classes=[0, 1, 2, 8, 10]),
    cutmix=dict(presence_area_thresh=0.01, component_area_thresh=0.005))
max_iters = 18000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
