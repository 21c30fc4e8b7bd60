# The semi-supervised training loader that every dataset base fills in: each
# step (one batch) is composed by SemiSegSampler and passed on by
# SemiSegBatchSampler (ael_mmseg/datasets/samplers/):
#   batch_size labeled crops ('sup'),
#   batch_size copy-paste sources ('sup_paste') iff dataset.paste_pipeline is
#       set -- the one switch of Adaptive Copy-Paste (None: ACP off),
#   sampler.num_unlabeled CutMix targets ('unsup') and as many sources
#       ('unsup_source'; 0 for supervised training).
# batch_size is MMSeg's: labeled crops per GPU and step (the paper's 8 GPUs x 2).
# sampler.acm_lag: the ACM source of step t is drawn from the bank and presence
# table after step t - acm_lag, whatever the loader prefetches; it must be at
# least num_workers x prefetch_factor (here 4 x 2 = 8). With the bank's tau =
# 0.999 (a time constant of ~1000 steps) 8 steps are immaterial.
# The dataset bases set dataset.labeled / dataset.unlabeled (type, data_root,
# data_prefix, split file, pipeline) and dataset.paste_pipeline.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SemiSegSampler', num_unlabeled=1, acm_lag=8),
    batch_sampler=dict(type='SemiSegBatchSampler'),
    dataset=dict(type='SemiSegDataset'))
