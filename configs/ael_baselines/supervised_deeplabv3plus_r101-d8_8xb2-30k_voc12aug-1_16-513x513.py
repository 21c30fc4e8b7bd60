# Supervised only (labeled images of partition 1/16); the EMA teacher is kept and evaluated too.
_base_ = ['../ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_16-513x513.py']
model = dict(copy_paste=None, semi_train_cfg=dict(unsup_weight=0.0))
train_dataloader = dict(
    batch_size=2,
    sampler=dict(num_unlabeled=0, copy_paste=False),
    dataset=dict(paste_pipeline=None))
