# Semi-supervised Cityscapes for AEL: 769x769 crops, labeled / unlabeled split
# lists from tools/dataset_converters/make_semi_splits.py (default: 1/32,
# fold 0; partition configs change the two ann_file entries), sliding-window
# single-scale validation (the paper's protocol, set in the model's test_cfg).
# The loader itself (batch, sampler, workers) is ./semi_seg_dataloader.py's.
_base_ = ['./semi_seg_dataloader.py']
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
crop_size = (769, 769)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    # Plain random crop, as the original (no cat_max_ratio re-draws).
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
paste_pipeline = [  # ACP source: its own large-scale jitter
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_prefix = dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')
# Per GPU and step: 2 labeled crops (as the paper) + their 2 copy-paste sources
# + 1 CutMix pair (as the original code): ./semi_seg_dataloader.py's defaults.
train_dataloader = dict(
    dataset=dict(
        labeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_prefix,
            ann_file='splits/cityscapes/1_32/fold0/labeled.txt',
            pipeline=train_pipeline),
        unlabeled=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=train_prefix,
            ann_file='splits/cityscapes/1_32/fold0/unlabeled.txt',
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
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
tail_classes = ['wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'rider', 'truck',
                'bus', 'train', 'motorcycle', 'bicycle']
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'], tail_classes=tail_classes)
test_evaluator = val_evaluator
