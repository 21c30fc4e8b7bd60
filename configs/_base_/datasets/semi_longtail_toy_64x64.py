# Semi-supervised split of the synthetic long-tailed toy dataset
# (tools/misc/generate_longtail_toy.py writes it). The loader (sampler, batch
# sampler) is ./semi_seg_dataloader.py's; the toy sets its own batch and workers.
_base_ = ['./semi_seg_dataloader.py']
dataset_type = 'LongTailToyDataset'
data_root = 'data/longtail_toy'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# ACP source: the same labeled images with the large-scale jitter of ACP.
paste_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_data_prefix = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')
# Per step: 4 labeled images (+ their 4 copy-paste sources) and 2 CutMix pairs.
# ACM lag 4 = 2 workers x prefetch factor 2, the least these workers allow (the
# toy bank's tau 0.99 has a time constant of ~100 steps).
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    sampler=dict(num_unlabeled=2, acm_lag=4),
    dataset=dict(
        labeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_data_prefix,
            ann_file='splits/labeled.txt',
            pipeline=train_pipeline),
        unlabeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_data_prefix,
            ann_file='splits/unlabeled.txt',
            pipeline=unlabeled_pipeline),
        paste_pipeline=paste_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        ann_file='splits/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU.tail: the four rare object classes the dataset is built around.
tail_classes = ['red_disc', 'thin_pole', 'dotted_triangle', 'brown_ring']
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'], tail_classes=tail_classes)
test_evaluator = val_evaluator
