# The original's optimisation (its train.py and released yamls), for its 8 GPUs;
# 18k iterations (the paper's Cityscapes schedule; ./ael_schedule_30k.py: VOC).
#
# - SGD, momentum 0.9, weight decay 1e-4, poly lr (power 0.9), iteration-based.
# - The decoder and the auxiliary head train at 10x the backbone's lr (train.py's
#   `params_list`); here `paramwise_cfg.custom_keys`, over the student's parameters
#   (StudentOptimWrapperConstructor: the EMA teacher has no place in the optimizer).
# - Every loss is divided by the world size before backward() and DDP then averages
#   the gradients again, so the original's step on W GPUs is
#   lr * (mean_grad / W + wd * p). SGD with lr / W and weight decay wd * W on the
#   mean gradient is the same step, momentum buffer included; we configure that, so
#   the logged losses keep their plain values. At W = 8: backbone lr 0.00125, heads
#   0.0125, weight decay 8e-4. With another number of GPUs see the README
#   ("GPU clusters"); tests/test_configs/test_paper_recipe.py checks the equivalence.
original_lr = 0.01
original_weight_decay = 1e-4
original_world_size = 8
optimizer = dict(
    type='SGD',
    lr=original_lr / original_world_size,
    momentum=0.9,
    weight_decay=original_weight_decay * original_world_size)
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='StudentOptimWrapperConstructor',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(
        custom_keys={
            'decode_head': dict(lr_mult=10.0),
            'auxiliary_head': dict(lr_mult=10.0)
        }))
# Each rank draws its own images, ACP classes, CutMix boxes and AES keep masks
# (every draw is keyed by the sampler seed, the rank, the iteration and its slot:
# ael_mmseg/utils/keyed_random.py); the weights are still identical on every
# rank at the start (mmengine broadcasts them after init_weights, DDP at wrapping).
randomness = dict(seed=0, diff_rank_seed=True)
max_iters = 18000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
# Validation runs teacher and student; the best checkpoint is the best teacher.
# mmengine's loop; on resume its data stream starts at the resumed step by
# arithmetic (every draw is keyed by the step), without loading trained batches.
train_cfg = dict(type='SemiSegIterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='TeacherStudentValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook; AELHook adds the little an exact resume needs
    # beyond model, optimizer, schedulers and iteration (the ACM lag's history).
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=2000,
        max_keep_ckpts=2,
        save_best='teacher/mIoU',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # SIGTERM / SIGUSR1: finish the step, checkpoint, exit 75 (tools/slurm_train.sh
    # requeues). Here, not in custom_hooks: the model bases own that list.
    preemption=dict(type='PreemptionCheckpointHook'))
