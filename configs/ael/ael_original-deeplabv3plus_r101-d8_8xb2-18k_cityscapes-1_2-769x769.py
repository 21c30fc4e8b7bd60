# AEL on the original code's network and pipeline, DeepLabV3+ R101-D8, Cityscapes
# 769x769, 18k iterations, 8 GPUs x (2 labeled crops + their 2 copy-paste sources + 1
# CutMix pair of unlabeled images), partition 1/2 (1488 labeled images), fold 0; other folds:
# change fold0. Paper: Hu et al., NeurIPS 2021. Network: the first base; pipeline: the
# second; optimisation: the schedule (as the MMSeg-network configs). The Cityscapes
# original-network partition configs differ in the split only.
_base_ = [
    '../_base_/models/ael_original-deeplabv3plus_r101-d8_cityscapes.py',
    '../_base_/datasets/semi_cityscapes-original-pipeline_769x769.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule.py',
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/cityscapes/1_2/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/cityscapes/1_2/fold0/unlabeled.txt')))
