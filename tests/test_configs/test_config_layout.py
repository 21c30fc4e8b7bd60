"""How the shipped configs are put together: inheritance depth, who inherits whom, one ACP key.

Depth counts the config itself as 1 and every ``_base_`` hop below it,
``mmseg::`` bases (read from mmseg's installed ``.mim/configs``) included.
"""
import argparse
import ast
import copy
import glob
import importlib.util
import os.path as osp
import re

import mmseg
import pytest
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from ael_mmseg.datasets import SemiSegBatchSampler, semi_sampler_of
from ael_mmseg.datasets.splits import make_split, train_image_ids, write_split
from helpers.mini_datasets import make_mini_cityscapes
from helpers.stock_tools import REPO_ROOT

MAX_DEPTH = 4
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
                 if '_base_' not in p)
BASES = sorted(glob.glob(osp.join(CONFIG_ROOT, '_base_', '**', '*.py'), recursive=True))
DERIVED = [p for p in CONFIGS
           if osp.basename(osp.dirname(p)) in ('ael_baselines', 'ael_ablations')]
AEL_CONFIGS = [p for p in CONFIGS if osp.basename(osp.dirname(p)) == 'ael']


def _ids(paths):
    return [osp.relpath(p, CONFIG_ROOT) for p in paths]


def base_files(path):
    """The files ``path`` lists in ``_base_`` (read without running it), resolved."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            names = [value] if isinstance(value, str) else list(value)
    resolved = []
    for name in names:
        if name.startswith('mmseg::'):
            full = osp.join(MMSEG_CONFIGS, name[len('mmseg::'):])
        else:
            assert '::' not in name, f'{path}: base {name!r} of another package'
            full = osp.normpath(osp.join(osp.dirname(path), name))
        assert osp.isfile(full), f'{path}: base {name!r} not found at {full}'
        resolved.append(full)
    return resolved


def chain(path):
    """The longest ``_base_`` chain from ``path`` down, ``path`` first."""
    longest = [path]
    for base in base_files(path):
        below = chain(base)
        if 1 + len(below) > len(longest):
            longest = [path] + below
    return longest


def _short(path):
    if path.startswith(MMSEG_CONFIGS):
        return 'mmseg::' + osp.relpath(path, MMSEG_CONFIGS)
    return osp.relpath(path, CONFIG_ROOT)


def test_the_chain_walker_counts_mmseg_bases(tmp_path):
    leaf = tmp_path / 'a.py'
    leaf.write_text("_base_ = ['./b.py']\n")
    (tmp_path / 'b.py').write_text("_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'\n")
    assert [_short(p) for p in chain(str(leaf))][2] == \
        'mmseg::_base_/models/deeplabv3plus_r50-d8.py'
    assert len(chain(str(leaf))) == 3


def test_every_shipped_config_is_found():
    # 13 AEL, 10 AEL on the original network, 24 baselines, 8 ablations
    assert len(CONFIGS) == 55, _ids(CONFIGS)
    assert len(DERIVED) == 32


@pytest.mark.parametrize('path', CONFIGS + BASES, ids=_ids(CONFIGS + BASES))
def test_inheritance_is_at_most_four_deep(path):
    longest = chain(path)
    assert len(longest) <= MAX_DEPTH, \
        f'{len(longest)} levels: ' + ' -> '.join(_short(p) for p in longest)


@pytest.mark.parametrize('path', DERIVED, ids=_ids(DERIVED))
def test_baselines_and_ablations_inherit_the_ael_config_of_their_partition(path):
    method, rest = osp.basename(path).split('_', 1)
    assert base_files(path) == [osp.join(CONFIG_ROOT, 'ael', f'ael_{rest}')], method


def _flat(value, prefix=''):
    if isinstance(value, dict):
        items = {}
        for key, sub in value.items():
            items.update(_flat(sub, f'{prefix}.{key}' if prefix else key))
        return items
    return {prefix: value}


def _differences(path):
    """Dotted keys where a config differs from the AEL config it inherits."""
    cfg = Config.fromfile(path).to_dict()
    ael = Config.fromfile(base_files(path)[0]).to_dict()
    mine, theirs = _flat(cfg), _flat(ael)
    return {k for k in set(mine) | set(theirs) if mine.get(k, '-') != theirs.get(k, '-')}


# What each kind of derived config may change in its AEL config, and nothing else.
PASTE = 'train_dataloader.dataset.paste_pipeline'
CUTMIX = {'model.cutmix.type', 'model.cutmix.presence_area_thresh',
          'model.cutmix.component_area_thresh'}
ALLOWED = {
    'cutmix-mt+acm': {PASTE, 'model.unsup_loss.use_dynamic_reweighting',
                      'model.unsup_loss.use_equalization_sampling'},
    'cutmix-mt+acp': CUTMIX | {'model.unsup_loss.use_dynamic_reweighting',
                               'model.unsup_loss.use_equalization_sampling'},
    'cutmix-mt+dr': CUTMIX | {PASTE, 'model.unsup_loss.use_equalization_sampling'},
    'cutmix-mt+aes': CUTMIX | {PASTE, 'model.unsup_loss.use_dynamic_reweighting'},
}


@pytest.mark.parametrize('path', DERIVED, ids=_ids(DERIVED))
def test_derived_configs_change_only_their_parts(path):
    method = osp.basename(path).split('_', 1)[0]
    changed = _differences(path)
    if method in ALLOWED:  # ablations: the same AELSegmentor with three parts off
        assert changed and changed <= ALLOWED[method], sorted(changed - ALLOWED[method])
        return
    # Baselines: another model around the same segmentor, semi-supervised settings and
    # schedule; the AEL parts, bank and their hooks go.
    cfg, ael = Config.fromfile(path), Config.fromfile(base_files(path)[0])
    assert cfg.model.type == 'CutMixMeanTeacher' and cfg.model.cutmix.type == 'CutMix'
    assert set(cfg.model) == {'type', 'segmentor', 'data_preprocessor', 'cutmix',
                              'semi_train_cfg', 'semi_test_cfg'}
    for key in ('segmentor', 'data_preprocessor', 'semi_test_cfg'):
        assert cfg.model[key] == ael.model[key], key
    expected_semi = dict(ael.model.semi_train_cfg)
    if method == 'supervised':
        expected_semi['unsup_weight'] = 0.0
    assert cfg.model.semi_train_cfg == expected_semi
    outside = {k for k in changed if not k.startswith(('model.', 'custom_hooks'))}
    allowed = {PASTE} | ({'train_dataloader.sampler.num_unlabeled'}
                         if method == 'supervised' else set())
    assert outside == allowed, sorted(outside)
    assert [h['type'] for h in cfg.custom_hooks] == ['AELHook', 'FiniteLossHook']


def test_the_generic_model_base_is_mmseg_deeplabv3plus_with_ohem():
    ours = Config.fromfile(osp.join(CONFIG_ROOT, '_base_', 'models',
                                    'ael_deeplabv3plus_r50-d8.py')).to_dict()
    stock = Config.fromfile(osp.join(MMSEG_CONFIGS, '_base_', 'models',
                                     'deeplabv3plus_r50-d8.py')).to_dict()

    def without_losses(segmentor):
        segmentor = copy.deepcopy(segmentor)
        for head in ('decode_head', 'auxiliary_head'):
            segmentor[head].pop('loss_decode')
        return _flat(segmentor)

    assert without_losses(ours['segmentor']) == {
        k: v for k, v in without_losses(stock['model']).items() if not k.endswith('_scope_')}
    assert ours['data_preprocessor'] == stock['data_preprocessor']
    assert ours['model']['segmentor'] == ours['segmentor']


# --- one key switches Adaptive Copy-Paste and the per-step batch follows ----------------


@pytest.fixture(scope='module')
def cityscapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cityscapes'))
    make_mini_cityscapes(root, num_train=6, num_val=1)
    labeled, unlabeled = make_split(train_image_ids('cityscapes', root), 2, seed=0)
    write_split(osp.join(root, 'splits', 'cityscapes', '1_32', 'fold0'), labeled, unlabeled)
    return root


def _first_batch_roles(cfg, root):
    """Build the train loader as mmengine's Runner does; the roles of its first batch."""
    init_default_scope('mmseg')
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    for side in ('labeled', 'unlabeled'):
        loader_cfg.dataset[side].data_root = root
    loader_cfg.update(num_workers=0, persistent_workers=False)  # the test's process only
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert isinstance(loader.batch_sampler, SemiSegBatchSampler)
    assert semi_sampler_of(loader) is loader.batch_sampler.sampler
    batch = next(iter(loader))
    return [sample.metainfo['ael_role'] for sample in batch['data_samples']]


@pytest.mark.parametrize('name, root', [
    ('ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py', 'toy_root'),
    ('ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py', 'cityscapes_root'),
])
def test_paste_pipeline_none_drops_the_paste_sources_and_nothing_else(name, root, request):
    root = request.getfixturevalue(root)
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, 'ael', name))
    labeled, pairs = cfg.train_dataloader.batch_size, cfg.train_dataloader.sampler.num_unlabeled
    with_acp = _first_batch_roles(cfg, root)
    assert with_acp == ['sup'] * labeled + ['sup_paste'] * labeled + ['unsup'] * pairs + \
        ['unsup_source'] * pairs

    cfg.merge_from_dict({'train_dataloader.dataset.paste_pipeline': None})  # the one edit
    without_acp = _first_batch_roles(cfg, root)
    assert without_acp == ['sup'] * labeled + ['unsup'] * pairs + ['unsup_source'] * pairs


@pytest.mark.parametrize('path', AEL_CONFIGS, ids=_ids(AEL_CONFIGS))
def test_ael_configs_switch_acp_with_the_paste_pipeline_only(path):
    cfg = Config.fromfile(path)
    assert cfg.train_dataloader.dataset.paste_pipeline, 'AEL configs run ACP'
    assert cfg.train_dataloader.batch_sampler == dict(type='SemiSegBatchSampler')
    assert not {'num_labeled', 'copy_paste'} & set(cfg.train_dataloader.sampler)
    # The batch size names the labeled crops per GPU, as in the config name (8xb2, 1xb4).
    per_gpu = int(re.search(r'_\d+xb(\d+)-', osp.basename(path)).group(1))
    assert cfg.train_dataloader.batch_size == per_gpu


def _toy_benchmark():
    path = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_toy_methods.py')
    spec = importlib.util.spec_from_file_location('benchmark_toy_methods', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toy_benchmark_ablations_are_the_ael_config_with_one_part_on():
    bench = _toy_benchmark()
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    for name, (config, options) in bench.ABLATIONS.items():
        assert config == bench.AEL, name
        cfg = Config.fromfile(osp.join(REPO_ROOT, config))
        if options:
            cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
        on = {
            'dr': cfg.model.unsup_loss.use_dynamic_reweighting,
            'aes': cfg.model.unsup_loss.use_equalization_sampling,
            'acm': cfg.model.cutmix.type == 'AdaptiveCutMix',
            'acp': cfg.train_dataloader.dataset.paste_pipeline is not None,
        }
        assert {part for part, enabled in on.items() if enabled} == {name[len('mt+'):]}, name
        if not on['acm']:
            assert dict(cfg.model.cutmix) == dict(type='CutMix'), name
