# Ablation (paper Table 4): CutMix mean teacher + ACP only, partition 1/32:
# the AEL config of the partition with the other three parts switched off:
# ACP on (the dataset base's paste_pipeline); ACM off (random CutMix boxes),
# DR and AES off.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py']
model = dict(
    cutmix=dict(_delete_=True, type='CutMix'),
    unsup_loss=dict(use_dynamic_reweighting=False, use_equalization_sampling=False))
