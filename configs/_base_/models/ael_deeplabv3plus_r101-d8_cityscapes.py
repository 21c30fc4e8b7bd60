# AEL, DeepLabV3+ R101-D8 for Cityscapes 769x769 crops: the model of every
# Cityscapes partition config (configs/ael/*cityscapes*; the partition is the
# data split only). Paper: Hu et al., NeurIPS 2021.
# ImageNet-pretrained ResNet-101 (downloaded at run time); ACP K=3, p=0.5,
# Cityscapes "stuff" excluded (road, sidewalk, building, vegetation, sky); ACM
# presence threshold 0.01, component threshold 0.005; OHEM (0.7, 100000) + aux
# 0.4; sliding-window single-scale test.
_base_ = ['./ael_deeplabv3plus_r50-d8.py']
model = dict(
    data_preprocessor=dict(size=(769, 769)),
    segmentor=dict(
        pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(depth=101),
        decode_head=dict(align_corners=True),
        auxiliary_head=dict(align_corners=True),
        test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513))),
    copy_paste=dict(num_sampled_classes=3, excluded_classes=[0, 1, 2, 8, 10]),
    cutmix=dict(presence_area_thresh=0.01, component_area_thresh=0.005))
