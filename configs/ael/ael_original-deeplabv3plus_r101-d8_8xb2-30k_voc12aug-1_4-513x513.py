# AEL on the original code's network and pipeline, DeepLabV3+ R101-D8, Pascal VOC 2012
# aug 513x513, 30k iterations, 8 GPUs x (2 labeled crops + their 2 copy-paste sources +
# 1 CutMix pair of unlabeled images), partition 1/4 (2646 labeled images), fold 0; other
# folds: change fold0. Network: the first base; pipeline: the second; optimisation: the
# schedule (as the MMSeg-network configs). The VOC original-network partition configs
# differ in the split only.
_base_ = [
    '../_base_/models/ael_original-deeplabv3plus_r101-d8_voc12aug.py',
    '../_base_/datasets/semi_voc12aug-original-pipeline_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/ael_schedule_30k.py',
]
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/voc_aug/1_4/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/voc_aug/1_4/fold0/unlabeled.txt')))
