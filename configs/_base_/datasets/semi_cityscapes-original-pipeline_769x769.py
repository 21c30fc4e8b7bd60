# Semi-supervised Cityscapes with the original AEL code's training pipeline
# (semseg/dataset/augmentation.py, cityscapes_semi_cp.py): scale jitter uniform on
# [0.5, 1] or [1, 2] with p = 0.5 each (ACP sources [0.1, 1] or [1, 2]) of the native
# 2048x1024 image, random 769x769 crop, flip. Crops smaller than 769 are padded by the
# data preprocessor (image 0 after normalisation, label 0: the model base's seg_pad_val).
# Everything else is ./semi_cityscapes_769x769.py's.
_base_ = ['./semi_cityscapes_769x769.py']
crop_size = (769, 769)
original_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='TwoRangeRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
original_paste_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='TwoRangeRandomResize', ratio_range=(0.1, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
original_unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TwoRangeRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(pipeline=original_train_pipeline),
        unlabeled=dict(pipeline=original_unlabeled_pipeline),
        paste_pipeline=original_paste_pipeline))
