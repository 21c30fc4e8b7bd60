# ./ael_schedule.py over 30k iterations (the paper's VOC schedule; the released
# yaml's 80 epochs over the unlabeled loader vary with the partition), validated
# every 3000.
_base_ = ['./ael_schedule.py']
max_iters = 30000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=3000)
