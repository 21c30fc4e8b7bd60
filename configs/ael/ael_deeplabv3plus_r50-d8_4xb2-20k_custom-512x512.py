# AEL on your own data: a template. Copy it, edit the block "set once" below,
# write the splits with
#   python tools/dataset_converters/make_semi_splits.py plain <data_root> \
#       --config <this config> --partitions 1/8
# and train with tools/train.py / tools/dist_train.sh (README "Your own data").
#
# Data: MMSeg's plain layout, read by the stock BaseSegDataset with a metainfo:
#   <data_root>/img_dir/{train,val}/<id><img_suffix>    images
#   <data_root>/ann_dir/{train,val}/<id><seg_map_suffix> single-channel masks,
#       pixel value i = classes[i], 255 = ignored
# The split tool checks all of this (and that the classes, palette and every
# num_classes below agree) before anything is trained.
#
# Model and AEL settings are the paper's (DeepLabV3+ with an ImageNet-pretrained
# ResNet, OHEM + auxiliary head, tau 0.999, DR + AES + ACM + ACP); ResNet-50
# instead of the paper's ResNet-101 as the cheaper first run (for R101:
# backbone depth=101, pretrained='open-mmlab://resnet101_v1c').
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]

# --------------------------------------------------------------- set once
data_root = 'data/my_dataset'
classes = ('background', 'scratch', 'dent', 'crack')  # mask value i is classes[i]
palette = [[0, 0, 0], [220, 20, 60], [0, 0, 142], [250, 170, 30]]  # one RGB per class
img_suffix = '.jpg'
seg_map_suffix = '.png'
# The split folder make_semi_splits.py wrote under <data_root>/splits/plain/.
split = '1_8/fold0'
# Classes that cover most of every image ("stuff"): Adaptive Copy-Paste never
# pastes them (pasting all their pixels would cover the whole image).
stuff_classes = ('background', )
# Images are rescaled to fit (long side, short side) before the 0.5-2.0 random
# scaling; set it to the size your objects should be seen at. Cityscapes uses
# (2048, 1024), i.e. full resolution; (1024, 512) suits ~1-megapixel images.
image_scale = (1024, 512)
# GPUs you train on: sets the learning rate and weight decay (optimiser below).
num_gpus = 4
# ------------------------------------------- chosen for the data (reasons)
# Crop: 512 x 512 covers the whole short side of an image rescaled to
# image_scale (the paper: 769 of Cityscapes' 1024 rows, 513 = all of a VOC
# image), so a crop keeps most of the context; memory grows with crop^2. If
# your images are smaller than 512 after rescaling, use their size instead.
crop_size = (512, 512)
# Batch per GPU: 2 labeled crops (train_dataloader.batch_size) + 1 CutMix
# pair, the paper's per-GPU batch (8 GPUs x 2 labeled); the ACP sources double
# the labeled part (paste_pipeline = None below turns ACP off and drops them).
# On 4 GPUs a step sees 8 labeled images. Estimated (not measured) at ~8-10 GB
# per GPU for ResNet-50 at 512 x 512.
num_labeled = 2
num_unlabeled = 1
# ------------------------------------------------------ derived from the above
num_classes = len(classes)
split_dir = f'splits/plain/{split}'  # relative to data_root

model = dict(
    data_preprocessor=dict(size=crop_size),
    segmentor=dict(
        pretrained='open-mmlab://resnet50_v1c',
        decode_head=dict(
            num_classes=num_classes,
            # OHEM keeps at least min_kept pixels per GPU batch: the paper's
            # 100000 are 8.5% of its 2 x 769 x 769 labeled pixels; 8.5% of
            # 2 x 512 x 512 is 45000.
            loss_decode=dict(min_kept=45000)),
        auxiliary_head=dict(num_classes=num_classes, loss_decode=dict(min_kept=45000)),
        # Sliding-window test with the training crop (stride 2/3 of it, as the
        # paper's 769 / 513) works for any image size.
        test_cfg=dict(
            mode='slide',
            crop_size=crop_size,
            stride=(crop_size[0] * 2 // 3, crop_size[1] * 2 // 3))),
    # ACP: one class per image (VOC's K; Cityscapes, with 19 classes and
    # many objects per image, used 3). Never the stuff classes.
    copy_paste=dict(
        num_sampled_classes=1, excluded_classes=[classes.index(c) for c in stuff_classes]),
    # ACM: a class is "present" in an unlabeled image if the teacher predicts
    # it on at least presence_area_thresh of the image (Cityscapes 0.01, VOC
    # 0.03). Keep it below the area_when_present of your tail classes in
    # class_frequencies.json, or ACM never finds them.
    cutmix=dict(presence_area_thresh=0.01, component_area_thresh=0.005))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    # Plain random crops, as the original. MMSeg's cat_max_ratio=0.75 (re-draw
    # a crop up to 10 times while one class holds > 75% of it) is an option
    # when most crops would be background only.
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
paste_pipeline = [  # ACP source: its own large-scale jitter (0.1-2.0, as the original)
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset_type = 'BaseSegDataset'
metainfo = dict(classes=classes, palette=palette)
dataset_args = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=img_suffix,
    seg_map_suffix=seg_map_suffix,
    reduce_zero_label=False)
train_prefix = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')
# Each step (one batch per GPU), composed by SemiSegSampler and passed on by
# SemiSegBatchSampler: batch_size labeled crops, as many copy-paste sources iff
# paste_pipeline is set, num_unlabeled CutMix targets and as many sources.
train_dataloader = dict(
    batch_size=num_labeled,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SemiSegSampler', num_unlabeled=num_unlabeled),
    batch_sampler=dict(type='SemiSegBatchSampler'),
    dataset=dict(
        type='SemiSegDataset',
        labeled=dict(
            **dataset_args,
            data_prefix=train_prefix,
            ann_file=f'{split_dir}/labeled.txt',
            pipeline=train_pipeline),
        unlabeled=dict(
            **dataset_args,
            data_prefix=train_prefix,
            ann_file=f'{split_dir}/unlabeled.txt',
            pipeline=unlabeled_pipeline),
        paste_pipeline=paste_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset_args,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU.tail: the tail classes of the labeled split, read from the frequency
# file the split tool wrote (the rarest classes holding <= 5% of its pixels).
val_evaluator = dict(
    type='PerClassIoUMetric',
    iou_metrics=['mIoU'],
    tail_classes_file=f'{data_root}/{split_dir}/class_frequencies.json')
test_evaluator = val_evaluator

# Schedule: the paper trains 18k iterations on Cityscapes (2975 images) and
# 30k on VOC (10582) at 16 labeled images per step, i.e. ~100 and ~45 passes
# over the training images. For N training images and B labeled images per
# step (4 GPUs x 2 = 8 here) take ~75 x N / B iterations, but not fewer than
# ~10k: the EMA teacher and the confidence bank (tau 0.999, a time constant of
# ~1000 iterations) need that long to settle. 20k fits N ~ 2000. The number of
# labeled images n changes how often each is seen (max_iters x B / n times:
# 1600 for n = 100), not the schedule: the paper kept 18k iterations from 93
# to 1488 labeled Cityscapes images. Without ImageNet weights (training from
# scratch) add a supervised warm-up (model.semi_train_cfg.warmup_iters,
# rampup_iters, pseudo_label_thresh: README "Training on the CPU from scratch").
#
# Optimiser: the base schedule's SGD (heads at 10x the backbone's lr) with the
# step the original train.py takes on num_gpus GPUs of 2 crops each: it divides
# every loss by the world size, which is backbone lr 0.01 / num_gpus and weight
# decay 1e-4 x num_gpus here (README "GPU clusters", "Other GPU counts").
max_iters = 20000
optim_wrapper = dict(optimizer=dict(lr=0.01 / num_gpus, weight_decay=1e-4 * num_gpus))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
