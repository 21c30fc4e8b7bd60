# Ablation (paper Table 4): CutMix mean teacher + ACM only, partition 1/32.
_base_ = ['../ael_baselines/cutmix-mt_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py']
model = dict(cutmix=dict(adaptive=True))
