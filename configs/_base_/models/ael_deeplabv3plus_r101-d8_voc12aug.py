# AEL, DeepLabV3+ R101-D8 for Pascal VOC 2012 aug, 513x513 crops: the model of
# every VOC partition config (configs/ael/*voc12aug*; the partition is the data
# split only). ImageNet-pretrained ResNet-101 (downloaded at run time).
# ACP K=1, never pasting background (the original applied its Cityscapes
# exclusions 0,1,2,8,10 on VOC too: background, but by mistake also aeroplane,
# bicycle, cat and cow); ACM thresholds 0.03; teacher pseudo-labels below 0.7
# confidence ignored (the original's VOC config).
_base_ = ['./ael_deeplabv3plus_r50-d8.py']
model = dict(
    data_preprocessor=dict(size=(513, 513)),
    segmentor=dict(
        pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(depth=101),
        decode_head=dict(num_classes=21),
        auxiliary_head=dict(num_classes=21)),
    copy_paste=dict(num_sampled_classes=1, excluded_classes=[0]),
    cutmix=dict(presence_area_thresh=0.03, component_area_thresh=0.03),
    semi_train_cfg=dict(pseudo_label_thresh=0.7))
