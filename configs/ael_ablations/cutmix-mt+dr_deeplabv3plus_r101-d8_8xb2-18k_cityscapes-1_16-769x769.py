# Ablation (paper Table 4): CutMix mean teacher + DR only, partition 1/16:
# the AEL config of the partition with the other three parts switched off:
# DR on; ACM off (random CutMix boxes), ACP off (no copy-paste sources in the
# batch: paste_pipeline=None), AES off.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py']
model = dict(
    cutmix=dict(_delete_=True, type='CutMix'),
    unsup_loss=dict(use_equalization_sampling=False))
train_dataloader = dict(dataset=dict(paste_pipeline=None))
