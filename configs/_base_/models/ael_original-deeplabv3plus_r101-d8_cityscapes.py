# AEL on the original code's network for Cityscapes 769x769 crops (hzhupku/SemiSeg-AEL
# semseg/models/resnet.py, decoder.py, base.py): the model of every Cityscapes
# original-network partition config. AEL settings: the MMSeg-network base it inherits.
# Backbone: deep-stem ResNet-101 (64-64-128), max-pool ceil_mode, output stride 8,
# layer4 multi-grid dilations 4/8/16, ImageNet weights of PyTorch-Encoding's
# resnet101-2a57e44d converted by tools/model_converters/deepstem_resnet_to_mmseg.py.
# Decoder: dense ASPP at 256 channels (+ image pooling), 1280->256 head, 256-channel
# low-level projection, two dense 3x3 fusion convs; aux head with conv bias; heads in
# PyTorch's default init; align_corners=True; labels of padded crop borders are 0 (the
# original's Crop pads with 0, a class, not 255); slide test averages softmax.
_base_ = ['./ael_deeplabv3plus_r101-d8_cityscapes.py']
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
            num_classes=19,
            norm_cfg=norm_cfg,
            align_corners=True,
            init_like_pytorch=True,
            init_cfg=None,
            loss_decode=dict(
                type='ProbOhemCrossEntropyLoss', thresh=0.7, min_kept=100000, loss_weight=1.0)),
        auxiliary_head=dict(type='BiasedFCNHead', init_like_pytorch=True, init_cfg=None,
                            align_corners=True)))
