# Supervised only (labeled images of partition 1/32): the CutMix mean teacher with
# unsup_weight 0 and no unlabeled images in the batch; the EMA teacher is kept
# and evaluated too.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py']
model = dict(
    _delete_=True,
    type='CutMixMeanTeacher',
    segmentor=_base_.model.segmentor,
    data_preprocessor=_base_.model.data_preprocessor,
    cutmix=dict(type='CutMix'),
    semi_train_cfg=dict(_base_.model.semi_train_cfg, unsup_weight=0.0),
    semi_test_cfg=_base_.model.semi_test_cfg)
train_dataloader = dict(
    sampler=dict(num_unlabeled=0), dataset=dict(paste_pipeline=None))
