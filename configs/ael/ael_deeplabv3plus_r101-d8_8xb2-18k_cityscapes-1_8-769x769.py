# AEL, partition 1/8 (372 labeled images), fold 0; other folds: change fold0.
_base_ = ['./ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py']
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/cityscapes/1_8/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/cityscapes/1_8/fold0/unlabeled.txt')))
