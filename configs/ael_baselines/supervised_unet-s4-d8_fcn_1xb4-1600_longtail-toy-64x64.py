# Supervised-only baseline of the toy main job: the same UNet student and
# schedule, labeled images only (the EMA teacher is still kept and evaluated).
_base_ = ['../ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py']
model = dict(copy_paste=None, semi_train_cfg=dict(unsup_weight=0.0))
num_labeled = 4
train_dataloader = dict(
    batch_size=num_labeled,
    sampler=dict(num_unlabeled=0, copy_paste=False),
    dataset=dict(paste_pipeline=None))
