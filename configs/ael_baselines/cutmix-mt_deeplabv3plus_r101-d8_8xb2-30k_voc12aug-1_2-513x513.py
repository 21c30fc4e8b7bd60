# CutMix mean teacher (the paper's baseline), partition 1/2: the AEL config's student,
# teacher and semi-supervised settings with random CutMix boxes, no ACP (no
# copy-paste sources in the batch), no confidence bank, plain cross entropy on
# the pseudo-labels.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_2-513x513.py']
model = dict(
    _delete_=True,
    type='CutMixMeanTeacher',
    segmentor=_base_.model.segmentor,
    data_preprocessor=_base_.model.data_preprocessor,
    cutmix=dict(type='CutMix'),
    semi_train_cfg=_base_.model.semi_train_cfg,
    semi_test_cfg=_base_.model.semi_test_cfg)
train_dataloader = dict(dataset=dict(paste_pipeline=None))
