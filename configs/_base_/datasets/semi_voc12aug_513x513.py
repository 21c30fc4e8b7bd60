# Semi-supervised Pascal VOC 2012 (augmented set, 10582 train images) for
# AEL: 513x513 crops, split lists from tools/dataset_converters/
# make_semi_splits.py voc_aug, labels from SegmentationClassAug (mmseg's
# voc_aug converter), single-scale whole-image validation on val (1449).
# The loader itself (batch, sampler, workers) is ./semi_seg_dataloader.py's.
_base_ = ['./semi_seg_dataloader.py']
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (513, 513)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    # Plain random crop, as the original (no cat_max_ratio re-draws).
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs'),
]
paste_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug')
# Per GPU and step: 2 labeled crops + 2 copy-paste sources + 1 CutMix pair
# (./semi_seg_dataloader.py's defaults).
train_dataloader = dict(
    dataset=dict(
        labeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_prefix,
            ann_file='splits/voc_aug/1_32/fold0/labeled.txt',
            pipeline=train_pipeline),
        unlabeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_prefix,
            ann_file='splits/voc_aug/1_32/fold0/unlabeled.txt',
            pipeline=unlabeled_pipeline),
        paste_pipeline=paste_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
