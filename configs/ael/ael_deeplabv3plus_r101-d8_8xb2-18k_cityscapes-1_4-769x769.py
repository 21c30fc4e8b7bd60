# AEL, DeepLabV3+ R101-D8, Cityscapes 769x769, 18k iterations, 8 GPUs x (2 labeled crops
# + their 2 copy-paste sources + 1 CutMix pair of unlabeled images), partition 1/4
# (744 labeled images), fold 0; other folds: change fold0. Paper: Hu et al., NeurIPS 2021.
# Model and AEL settings: the first base; optimisation (the original's lr 0.01, heads
# 10x, SGD momentum 0.9, wd 1e-4, poly 0.9, folded with its 8-GPU loss scaling): the
# schedule. The Cityscapes partition configs differ in the split only.
_base_ = [
    '../_base_/models/ael_deeplabv3plus_r101-d8_cityscapes.py',
    '../_base_/datasets/semi_cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/cityscapes/1_4/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/cityscapes/1_4/fold0/unlabeled.txt')))
