# Semi-supervised Pascal VOC 2012 aug with the original AEL code's pipeline
# (semseg/dataset/augmentation.py, pascal_voc_semi_cp.py, eval.py): no resize to a
# fixed scale first -- the jitter (uniform on [0.5, 1] or [1, 2], p = 0.5 each; ACP
# sources [0.1, 1] or [1, 2]) acts on the native image size -- random 513x513 crop,
# flip; crops smaller than 513 padded by the data preprocessor (image 0 after
# normalisation, label 0: the model base's seg_pad_val); test at native size.
# Everything else is ./semi_voc12aug_513x513.py's.
_base_ = ['./semi_voc12aug_513x513.py']
crop_size = (513, 513)
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
original_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(pipeline=original_train_pipeline),
        unlabeled=dict(pipeline=original_unlabeled_pipeline),
        paste_pipeline=original_paste_pipeline))
val_dataloader = dict(dataset=dict(pipeline=original_test_pipeline))
test_dataloader = val_dataloader
