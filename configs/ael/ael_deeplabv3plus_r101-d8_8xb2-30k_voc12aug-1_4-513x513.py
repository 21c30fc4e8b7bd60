# AEL, partition 1/4 (2646 labeled images), fold 0; other folds: change fold0.
_base_ = ['./ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_32-513x513.py']
train_dataloader = dict(
    dataset=dict(
        labeled=dict(ann_file='splits/voc_aug/1_4/fold0/labeled.txt'),
        unlabeled=dict(ann_file='splits/voc_aug/1_4/fold0/unlabeled.txt')))
