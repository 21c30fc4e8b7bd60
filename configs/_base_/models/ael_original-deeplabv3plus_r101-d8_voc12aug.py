# AEL on the original code's network for Pascal VOC 2012 aug 513x513 crops: the model
# of every VOC original-network partition config. AEL settings: the MMSeg-network base
# it inherits. The network is the Cityscapes original-network base's (see there), with
# 21 classes and align_corners=True (the original's value on every dataset); the test
# is single-scale whole-image at native size, as the original's eval.py --scales 1.0.
_base_ = ['./ael_deeplabv3plus_r101-d8_voc12aug.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(seg_pad_val=0),
    segmentor=dict(
        type='SoftmaxSlideEncoderDecoder',
        data_preprocessor=dict(seg_pad_val=0),
        pretrained='checkpoints/resnet101-2a57e44d_mmseg.pth',
        backbone=dict(type='CeilPoolResNetV1c', stem_channels=128, multi_grid=(4, 8, 16)),
        decode_head=dict(
            _delete_=True,
            type='DenseDeepLabV3PlusHead',
            in_channels=2048,
            in_index=3,
            channels=256,
            dilations=(1, 12, 24, 36),
            c1_in_channels=256,
            c1_channels=256,
            aspp_dropout_ratio=0.1,
            fusion_dropout_ratio=0.1,
            dropout_ratio=0.1,
            num_classes=21,
            norm_cfg=norm_cfg,
            align_corners=True,
            init_like_pytorch=True,
            init_cfg=None,
            loss_decode=dict(
                type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=1.0)),
        auxiliary_head=dict(type='BiasedFCNHead', init_like_pytorch=True, init_cfg=None,
                            align_corners=True)))
