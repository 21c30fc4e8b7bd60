# Ablation (paper Table 4): CutMix mean teacher + DR only, partition 1/16.
_base_ = ['../ael_baselines/cutmix-mt_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py']
model = dict(unsup_loss=dict(use_dynamic_reweighting=True))
