"""Every hyper-parameter of every paper config, pinned against its source.

Each row names where its value comes from: the original's released code
(``train.py`` and the yamls ``experiments/{cityscapes_2,pascal_4}/config.yaml``
of hzhupku/SemiSeg-AEL), the paper (Hu et al., NeurIPS 2021), or ours where we
deliberately differ (the README's differences table says why).
"""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from helpers.paper_configs import PAPER_CONFIGS

WORLD_SIZE = 8  # the original's GPUs; its per-GPU loss scaling is folded into lr and wd


def _pipeline_step(pipeline, kind):
    return next(t for t in pipeline if t['type'] == kind)


def _jitter_step(pipeline):
    return next(t for t in pipeline if t['type'] in ('RandomResize', 'TwoRangeRandomResize'))


def _jitter_types(cfg):
    data = _dataset(cfg)
    pipelines = [data.labeled.pipeline, data.unlabeled.pipeline] + (
        [data.paste_pipeline] if data.get('paste_pipeline') else [])
    return {_jitter_step(p)['type'] for p in pipelines}


def _dataset(cfg):
    return cfg.train_dataloader.dataset


def _crops(cfg):
    data = _dataset(cfg)
    pipelines = [data.labeled.pipeline, data.unlabeled.pipeline]
    if data.get('paste_pipeline'):
        pipelines.append(data.paste_pipeline)
    return {tuple(_pipeline_step(p, 'RandomCrop')['crop_size']) for p in pipelines}


def _cat_max_ratios(cfg):
    data = _dataset(cfg)
    pipelines = [data.labeled.pipeline, data.unlabeled.pipeline] + (
        [data.paste_pipeline] if data.get('paste_pipeline') else [])
    return {_pipeline_step(p, 'RandomCrop').get('cat_max_ratio', 1.0) for p in pipelines}


def _ohem(head):
    loss = head.loss_decode
    return (loss['type'], loss['thresh'], loss['min_kept'], loss['loss_weight'],
            head.get('sampler'))


def _test_mode(cfg):
    test_cfg = cfg.model.segmentor.test_cfg
    if test_cfg.get('mode', 'whole') == 'whole':
        return ('whole', )
    return ('slide', tuple(test_cfg['crop_size']), tuple(test_cfg['stride']))


# (row, value of the config, Cityscapes, VOC, source)
ROWS = [
    ('backbone lr', lambda c: c.optim_wrapper.optimizer.lr, 0.01 / WORLD_SIZE,
     0.01 / WORLD_SIZE, 'released yamls: lr 0.01 (the paper says 0.001 for VOC), divided by '
     'the world size 8 (train.py 311, 358-365: loss / world_size, then the DDP mean)'),
    ('head lr multiplier', lambda c: {k: v['lr_mult'] for k, v in
                                      c.optim_wrapper.paramwise_cfg.custom_keys.items()},
     {'decode_head': 10.0, 'auxiliary_head': 10.0}, {'decode_head': 10.0, 'auxiliary_head': 10.0},
     'released train.py 113-119: decoder and aux head at lr * 10'),
    ('weight decay', lambda c: c.optim_wrapper.optimizer.weight_decay, 1e-4 * WORLD_SIZE,
     1e-4 * WORLD_SIZE, 'released yamls 1e-4, times 8 with the folded loss scaling'),
    ('optimizer', lambda c: (c.optim_wrapper.type, c.optim_wrapper.constructor,
                             c.optim_wrapper.optimizer.type, c.optim_wrapper.optimizer.momentum,
                             c.optim_wrapper.clip_grad),
     ('OptimWrapper', 'StudentOptimWrapperConstructor', 'SGD', 0.9, None),
     ('OptimWrapper', 'StudentOptimWrapperConstructor', 'SGD', 0.9, None),
     'released yamls: SGD momentum 0.9, no clipping (over the student; the teacher is EMA)'),
    ('poly schedule', lambda c: [(s.type, s.power, s.eta_min, s.begin, s.end, s.by_epoch)
                                 for s in c.param_scheduler],
     [('PolyLR', 0.9, 0.0, 0, 18000, False)], [('PolyLR', 0.9, 0.0, 0, 30000, False)],
     'released lr_helper.py: poly 0.9 to 0, per iteration'),
    ('iterations', lambda c: (c.train_cfg.type, c.train_cfg.max_iters),
     ('SemiSegIterBasedTrainLoop', 18000), ('SemiSegIterBasedTrainLoop', 30000),
     'paper (18k / 30k); the released yamls count epochs over the unlabeled loader, which '
     'depends on the partition'),
    ('labeled crops per GPU', lambda c: c.train_dataloader.batch_size, 2, 2,
     'released yamls: batch_size 2 per GPU (8 GPUs: 16)'),
    ('step composition', lambda c: (c.train_dataloader.sampler.type,
                                    c.train_dataloader.batch_sampler.type),
     ('SemiSegSampler', 'SemiSegBatchSampler'), ('SemiSegSampler', 'SemiSegBatchSampler'),
     'ours: batch_size labeled crops, as many paste sources iff paste_pipeline, the pairs'),
    ('crop', _crops, {(769, 769)}, {(513, 513)}, 'released yamls'),
    ('preprocessor size', lambda c: tuple(c.model.data_preprocessor.size), (769, 769),
     (513, 513), 'released yamls (crop)'),
    ('labeled scale jitter', lambda c: tuple(_jitter_step(
        _dataset(c).labeled.pipeline)['ratio_range']), (0.5, 2.0), (0.5, 2.0),
     'released yamls: rand_resize [0.5, 2.0]'),
    ('no cat_max_ratio', _cat_max_ratios, {1.0}, {1.0}, 'released: a plain random crop'),
    ('OHEM decode head', lambda c: _ohem(c.model.segmentor.decode_head),
     ('ProbOhemCrossEntropyLoss', 0.7, 100000, 1.0, None),
     ('ProbOhemCrossEntropyLoss', 0.7, 100000, 1.0, None),
     'released yamls: criterion ohem thresh 0.7, min_kept 100000'),
    ('OHEM aux head', lambda c: _ohem(c.model.segmentor.auxiliary_head),
     ('ProbOhemCrossEntropyLoss', 0.7, 100000, 0.4, None),
     ('ProbOhemCrossEntropyLoss', 0.7, 100000, 0.4, None),
     'released yamls: aux_loss loss_weight 0.4, the same OHEM criterion'),
    ('aux head input', lambda c: (c.model.segmentor.auxiliary_head.in_index,
                                  c.model.segmentor.auxiliary_head.in_channels), (2, 1024),
     (2, 1024), 'released yamls: aux_plane 1024 (layer3)'),
    ('SyncBN', lambda c: c.model.segmentor.backbone.norm_cfg['type'], 'SyncBN', 'SyncBN',
     'released yamls: sync_bn True'),
    ('EMA decay', lambda c: c.model.semi_train_cfg.ema_momentum, 0.99, 0.99,
     'released yamls: ema_decay 0.99'),
    ('pseudo-label threshold', lambda c: c.model.semi_train_cfg.pseudo_label_thresh, 0.0, 0.7,
     'released yamls: criterion threshold (VOC 0.7, none on Cityscapes)'),
    ('teacher BN mode', lambda c: c.model.semi_train_cfg.teacher_bn_mode, 'train', 'train',
     'released train.py: model_teacher.train()'),
    ('no warm-up / ramp-up', lambda c: (c.model.semi_train_cfg.get('warmup_iters', 0),
                                        c.model.semi_train_cfg.get('rampup_iters', 0)),
     (0, 0), (0, 0), 'released train.py: the unsupervised loss from the first step'),
    ('test mode', _test_mode, ('slide', (769, 769), (513, 513)), ('whole', ),
     'released eval.py: base size 2048, crop 769, stride ceil(769 * 2/3) = 513, scale 1.0; '
     'VOC: ours, the whole image (the original validated a 513 centre crop)'),
    ('per-rank random streams', lambda c: (c.randomness.get('diff_rank_seed'), ), (True, ),
     (True, ), 'ours: the original seeded every rank alike (same ACP/CutMix/AES draws on all '
     '8 GPUs)'),
    ('stock checkpoints (AELHook adds the ACM lag history)',
     lambda c: c.default_hooks.checkpoint.type, 'CheckpointHook', 'CheckpointHook',
     'ours: exact resume'),
    ('ACM lag >= prefetch depth', lambda c: (
        c.train_dataloader.sampler.acm_lag,
        c.train_dataloader.num_workers * c.train_dataloader.get('prefetch_factor', 2)), (8, 8),
     (8, 8), 'ours: ACM sources from the bank 8 steps back (4 workers x prefetch 2)'),
]

# Rows of each network family: mmseg's DeepLabV3+ or the original code's network/pipeline.
_IMAGENET = ('ImageNet ResNet-101', lambda c: (c.model.segmentor.pretrained,
                                               c.model.segmentor.backbone.depth))
FAMILY_ROWS = {
    'mmseg': [
        _IMAGENET + (('open-mmlab://resnet101_v1c', 101), ('open-mmlab://resnet101_v1c', 101),
                     'paper: ImageNet-pretrained ResNet-101 (ours: mmseg ResNetV1c, see '
                     'docs/en/notes/differences_from_original.md)'),
        ('scale jitter draw', _jitter_types, {'RandomResize'}, {'RandomResize'},
         'ours: one uniform draw over the range'),
        ('label pad value', lambda c: c.model.data_preprocessor.seg_pad_val, 255, 255,
         'ours: padded borders ignored'),
        ('align_corners', lambda c: (c.model.segmentor.decode_head.align_corners,
                                     c.model.segmentor.auxiliary_head.align_corners),
         (True, True), (False, False), 'Cityscapes: released; VOC: mmseg VOC configs'),
    ],
    'original': [
        _IMAGENET + (('checkpoints/resnet101-2a57e44d_mmseg.pth', 101),
                     ('checkpoints/resnet101-2a57e44d_mmseg.pth', 101),
                     'released resnet.py: resnet101-2a57e44d, converted by '
                     'tools/model_converters/deepstem_resnet_to_mmseg.py'),
        ('scale jitter draw', _jitter_types, {'TwoRangeRandomResize'},
         {'TwoRangeRandomResize'}, 'released augmentation.py RandResize: [low, 1] or [1, high]'),
        ('label pad value', lambda c: c.model.data_preprocessor.seg_pad_val, 0, 0,
         'released augmentation.py Crop: ignore_label replaced by 0'),
        ('align_corners', lambda c: (c.model.segmentor.decode_head.align_corners,
                                     c.model.segmentor.auxiliary_head.align_corners),
         (True, True), (True, True), 'released decoder.py / model_helper.py'),
    ],
}

AEL_HOOKS = ['AELHook', 'FiniteLossHook']
# Rows of each model type (AEL and its ablations; the CutMix mean-teacher baselines).
MODEL_ROWS = {
    'AELSegmentor': [
        ('tau (bank momentum, Eq. 7)', lambda c: c.model.confidence_bank.momentum, 0.999,
         0.999, 'released yamls: acp momentum 0.999'),
        ('hooks', lambda c: [h['type'] for h in c.custom_hooks], AEL_HOOKS, AEL_HOOKS,
         'ours: EMA, bank, ACM sources, bank logging, finite-loss check'),
    ],
    'CutMixMeanTeacher': [
        ('random CutMix boxes', lambda c: c.model.cutmix.type, 'CutMix', 'CutMix',
         'paper: the CutMix mean-teacher baseline'),
        ('hooks', lambda c: [h['type'] for h in c.custom_hooks],
         AEL_HOOKS, AEL_HOOKS,
         'ours: EMA, finite-loss check (no bank)'),
    ],
}

# Settings of the AEL parts, used only where the part is on.
PART_ROWS = {
    'dr': [('gamma (DR, Eq. 12)', lambda c: c.model.unsup_loss.gamma, 2.0, 2.0,
            'released yamls: cons gamma 2')],
    'aes': [('beta (AES, Eq. 11)', lambda c: c.model.unsup_loss.beta, 1.0, 1.0,
             'released loss_helper.py: gamma2 default 1')],
    'acm': [('ACM thresholds (presence, component)', lambda c: (
        c.model.cutmix.presence_area_thresh, c.model.cutmix.component_area_thresh),
        (0.01, 0.005), (0.03, 0.03), 'released yamls: acm area_thresh2 / area_thresh')],
    'acp': [
        ('K', lambda c: c.model.copy_paste.num_sampled_classes, 3, 1,
         'released yamls: acp number'),
        ('ACP probability', lambda c: c.model.copy_paste.prob, 0.5, 0.5,
         'released yamls: acp prob'),
        ('ACP scale range', lambda c: tuple(_jitter_step(
            _dataset(c).paste_pipeline)['ratio_range']), (0.1, 2.0), (0.1, 2.0),
         'released yamls: acp rand_resize'),
        ('ACP excluded classes', lambda c: list(c.model.copy_paste.excluded_classes),
         [0, 1, 2, 8, 10], [0], 'released train.py (Cityscapes stuff); VOC: ours, background '
         'only (the original applied the Cityscapes ids on VOC by mistake)'),
    ],
}


def _describe(path):
    name = osp.basename(path)
    dataset = 'cityscapes' if '_cityscapes-' in name else 'voc12aug'
    method, _ = re.split(r'_(?:original-)?deeplabv3plus', name, maxsplit=1)
    partition = re.search(r'-(1_\d+)-', name).group(1)
    return dataset, method, partition


def _parts_on(cfg):
    model = cfg.model
    if model.type != 'AELSegmentor':
        return set()
    on = {
        'dr': model.unsup_loss.use_dynamic_reweighting,
        'aes': model.unsup_loss.use_equalization_sampling,
        'acm': model.cutmix.type == 'AdaptiveCutMix',
        # ACP is applied iff the batch has copy-paste sources.
        'acp': _dataset(cfg).get('paste_pipeline') is not None,
    }
    return {part for part, enabled in on.items() if enabled}


EXPECTED_PARTS = {
    'ael': {'dr', 'aes', 'acm', 'acp'},
    'cutmix-mt': set(),
    'cutmix-mt+dr': {'dr'},
    'cutmix-mt+aes': {'aes'},
    'cutmix-mt+acm': {'acm'},
    'cutmix-mt+acp': {'acp'},
}

_configs = {}


def _load(path):
    if path not in _configs:
        _configs[path] = Config.fromfile(path)
    return _configs[path]


def test_every_paper_config_is_covered():
    names = [osp.basename(p) for p in PAPER_CONFIGS]
    # 3 methods x 2 datasets x 5 partitions + 8 ablations; AEL on the original network x 10
    assert len(names) == 48, names
    assert {_describe(p)[1] for p in PAPER_CONFIGS} == set(EXPECTED_PARTS) | {'supervised'}


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=[osp.basename(p) for p in PAPER_CONFIGS])
def test_paper_config_hyperparameters(path):
    cfg = _load(path)
    dataset, method, partition = _describe(path)
    column = 0 if dataset == 'cityscapes' else 1
    parts = _parts_on(cfg)
    family = 'original' if '_original-deeplabv3plus_' in osp.basename(path) else 'mmseg'
    rows = list(ROWS) + MODEL_ROWS[cfg.model.type] + FAMILY_ROWS[family]
    for part in sorted(parts):
        rows += PART_ROWS[part]
    wrong = []
    for name, value_of, *expected, source in rows:
        value = value_of(cfg)
        want = expected[column]
        same = value == pytest.approx(want) if isinstance(want, float) else value == want
        if not same:
            wrong.append(f'{name}: {value!r}, expected {want!r} ({source})')
    assert not wrong, '\n'.join(wrong)

    # the partition's split files, fold 0
    split = 'cityscapes' if dataset == 'cityscapes' else 'voc_aug'
    for part in ('labeled', 'unlabeled'):
        assert _dataset(cfg)[part].ann_file == f'splits/{split}/{partition}/fold0/{part}.txt'

    # the AEL parts on in this config, and the batch that goes with them: batch_size
    # is the labeled crops whatever the parts; paste_pipeline alone switches ACP
    sampler = cfg.train_dataloader.sampler
    assert set(sampler) == {'type', 'num_unlabeled', 'acm_lag'}, sampler
    assert sampler.acm_lag == 8  # >= 4 workers x prefetch 2: the ACM bank is 8 steps old
    if method == 'supervised':
        assert cfg.model.type == 'CutMixMeanTeacher'
        assert cfg.model.semi_train_cfg.unsup_weight == 0.0
        assert sampler.num_unlabeled == 0 and _dataset(cfg).paste_pipeline is None
    else:
        assert cfg.model.type == ('CutMixMeanTeacher' if method == 'cutmix-mt'
                                  else 'AELSegmentor')
        assert cfg.model.semi_train_cfg.unsup_weight == 1.0  # released: consist_weight 1
        assert cfg.model.semi_train_cfg.unsup_on_labeled is True  # train.py: consistency1
        assert sampler.num_unlabeled == 1  # released: 2 unlabeled images mixed into one
        assert parts == EXPECTED_PARTS[method], (method, parts)
