# CutMix mean teacher (the paper's baseline): AEL with DR, AES, ACM and ACP off, partition 1/4.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_4-513x513.py']
model = dict(
    copy_paste=None,
    cutmix=dict(adaptive=False),
    unsup_loss=dict(use_dynamic_reweighting=False, use_equalization_sampling=False))
train_dataloader = dict(
    batch_size=4, sampler=dict(copy_paste=False), dataset=dict(paste_pipeline=None))
