"""Every config in configs/ builds: model, datasets on mini data roots, sampler, hooks, loops."""
import copy
import glob
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, METRICS, MODELS

from ael_mmseg.datasets.longtail_toy import make_longtail_toy
from ael_mmseg.datasets.splits import PARTITIONS, make_split, train_image_ids, write_split
from helpers.mini_datasets import make_mini_cityscapes, make_mini_voc
from helpers.plain_dataset import make_plain_dataset
from helpers.stock_tools import REPO_ROOT

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                                      recursive=True) if '_base_' not in p)


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('roots')
    roots = dict(cityscapes=str(base / 'cityscapes'), voc12aug=str(base / 'voc'),
                 toy=str(base / 'toy'), custom=str(base / 'custom'))
    make_mini_cityscapes(roots['cityscapes'], num_train=6, num_val=2)
    make_mini_voc(roots['voc12aug'], num_train=6, num_val=2, aug=True)
    make_longtail_toy(roots['toy'], num_labeled=4, num_unlabeled=4, num_val=2, size=32)
    # The template for a user's data: a plain-layout folder, split by the split tool
    # (classes and suffixes from the template itself).
    make_plain_dataset(roots['custom'], num_train=6, num_val=2, size=(32, 32),
                       img_suffix='.jpg', seg_map_suffix='.png')
    template = next(p for p in CONFIGS if '_custom-' in osp.basename(p))
    _split_tool()(['plain', roots['custom'], '--config', template, '--partitions', '1/8',
                   '--folds', '1'])
    # Every partition's split file, at the path the configs read.
    for dataset, key in (('cityscapes', 'cityscapes'), ('voc_aug', 'voc12aug')):
        ids = train_image_ids(dataset, roots[key])
        labeled, unlabeled = make_split(ids, 2, seed=0)
        for partition in PARTITIONS[dataset]:
            folder = partition.replace('/', '_')
            write_split(osp.join(roots[key], 'splits', dataset, folder, 'fold0'), labeled,
                        unlabeled)
    return roots


def _split_tool():
    path = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'make_semi_splits.py')
    spec = importlib.util.spec_from_file_location('make_semi_splits', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _root_for(path):
    name = osp.basename(path)
    return next(key for key in ('cityscapes', 'voc12aug', 'toy', 'custom') if key in
                name.replace('longtail-toy', 'toy'))


def _set_root(dataset_cfg, root):
    for key in ('labeled', 'unlabeled'):
        if key in dataset_cfg:
            dataset_cfg[key]['data_root'] = root
    if 'data_root' in dataset_cfg:
        dataset_cfg['data_root'] = root


def test_config_list_is_complete():
    names = [osp.basename(p) for p in CONFIGS]
    for partition in ('1_32', '1_16', '1_8', '1_4', '1_2'):
        for prefix in ('ael_', 'cutmix-mt_', 'supervised_'):
            assert any(n.startswith(prefix) and f'cityscapes-{partition}-' in n for n in names)
            assert any(n.startswith(prefix) and f'voc12aug-{partition}-' in n for n in names)
    for part in ('dr', 'aes', 'acm', 'acp'):
        assert sum(n.startswith(f'cutmix-mt+{part}_') for n in names) == 2


_built_models = {}


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_builds(path, data_roots):
    init_default_scope('mmseg')
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['ael_mmseg']
    model_cfg = copy.deepcopy(cfg.model)
    key = model_cfg.pretty_text if hasattr(model_cfg, 'pretty_text') else repr(model_cfg)
    if key not in _built_models:  # the same model in several configs: build it once
        _built_models.clear()
        _built_models[key] = MODELS.build(model_cfg)
    model = _built_models[key]

    root = data_roots[_root_for(path)]
    train = copy.deepcopy(cfg.train_dataloader)
    _set_root(train.dataset, root)
    dataset = DATASETS.build(train.dataset)
    # As Runner.build_dataloader: the sampler, then the batch sampler around it.
    sampler = DATA_SAMPLERS.build(train.sampler, default_args=dict(dataset=dataset, seed=0))
    batches = DATA_SAMPLERS.build(train.batch_sampler,
                                  default_args=dict(sampler=sampler, batch_size=train.batch_size))
    assert len(dataset.labeled.metainfo['classes']) == model.num_classes
    if dataset.paste is not None:  # copy-paste sources in the batch: the model pastes them
        assert getattr(model, 'copy_paste', None) is not None
    first_step = [dataset[key] for key in next(iter(batches))]
    labeled, pairs = train.batch_size, train.sampler.num_unlabeled
    assert [s['data_samples'].metainfo['ael_role'] for s in first_step] == \
        ['sup'] * labeled + ['sup_paste'] * (labeled if dataset.paste is not None else 0) + \
        ['unsup'] * pairs + ['unsup_source'] * pairs

    val = copy.deepcopy(cfg.val_dataloader)
    _set_root(val.dataset, root)
    assert len(DATASETS.build(val.dataset)) > 0
    evaluator = copy.deepcopy(cfg.val_evaluator)
    if evaluator.get('tail_classes_file'):  # <data_root>/splits/...: the mini root's
        evaluator['tail_classes_file'] = osp.join(
            root, osp.relpath(evaluator['tail_classes_file'], cfg.data_root))
    METRICS.build(evaluator)
    for hook in cfg.custom_hooks:
        HOOKS.build(copy.deepcopy(hook))
    assert LOOPS.get(cfg.train_cfg['type']) is not None
    assert LOOPS.get(cfg.val_cfg['type']) is not None
