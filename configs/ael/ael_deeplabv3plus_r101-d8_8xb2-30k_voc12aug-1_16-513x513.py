# AEL, DeepLabV3+ R101-D8, Pascal VOC 2012 aug 513x513, 30k iterations, 8 GPUs x (2
# labeled crops + their 2 copy-paste sources + 1 CutMix pair of unlabeled images),
# partition 1/16 (662 labeled images), fold 0; other folds: change fold0.
# Model and AEL settings: the first base; optimisation: the released config's lr 0.01
# (the paper text says 0.001, close to the 0.00125 that the released train.py's
# per-GPU loss scaling makes of it), heads 10x, folded with the 8-GPU loss scaling
# (the schedule). The VOC partition configs differ in the split only.
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r101-d8_voc12aug.py',
    '../_base_/datasets/semi_voc12aug_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule_30k.py',
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/voc_aug/1_16/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/voc_aug/1_16/fold0/unlabeled.txt')))
