# Ablation (paper Table 4): CutMix mean teacher + ACP only, partition 1/32.
_base_ = ['../ael_baselines/cutmix-mt_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py']
model = dict(
    copy_paste=dict(
        _delete_=True,
        type='AdaptiveCopyPaste',
        num_sampled_classes=3,
        prob=0.5,
        excluded_classes=[0, 1, 2, 8, 10]))
train_dataloader = dict(
    batch_size=6,
    sampler=dict(copy_paste=True),
    dataset=dict(paste_pipeline={{_base_.paste_pipeline}}))
