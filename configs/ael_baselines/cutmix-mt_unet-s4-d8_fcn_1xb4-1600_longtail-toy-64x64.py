# CutMix mean teacher on the toy main job = AEL with all four parts off (no
# ACP, plain CutMix, no DR, no AES); same UNet, schedule and remedies.
_base_ = ['../ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py']
model = dict(
    copy_paste=None,
    cutmix=dict(adaptive=False),
    unsup_loss=dict(use_dynamic_reweighting=False, use_equalization_sampling=False))
train_dataloader = dict(
    batch_size=8, sampler=dict(copy_paste=False), dataset=dict(paste_pipeline=None))
