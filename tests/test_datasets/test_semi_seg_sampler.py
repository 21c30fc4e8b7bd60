import itertools
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from ael_mmseg.datasets import SemiSegBatchSampler, semi_sampler_of
from ael_mmseg.datasets.samplers import ACMSourceState, semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler
from ael_mmseg.datasets.semi_seg_dataset import SampleKey
from ael_mmseg.utils.keyed_random import PIPELINE, derive_seed


def fake_dataset(num_labeled=10, num_unlabeled=20, paste=True):
    return SimpleNamespace(labeled=[None] * num_labeled, unlabeled=[None] * num_unlabeled,
                           paste=object() if paste else None)


def make_batches(monkeypatch, rank=0, world_size=1, batch_size=2, paste=True, **kwargs):
    """A SemiSegBatchSampler over a SemiSegSampler, as the runner builds them."""
    monkeypatch.setattr(semi_seg_sampler, 'get_dist_info', lambda: (rank, world_size))
    sampler = SemiSegSampler(fake_dataset(paste=paste), seed=kwargs.pop('seed', 3), **kwargs)
    return SemiSegBatchSampler(sampler, batch_size=batch_size)


def steps(batches, count):
    return list(itertools.islice(iter(batches), count))


def test_every_step_has_the_configured_composition(monkeypatch):
    batches = make_batches(monkeypatch, batch_size=2, num_unlabeled=1)
    assert batches.composition() == dict(sup=2, sup_paste=2, unsup=1, unsup_source=1)
    assert batches.sampler.batch_size == 6
    for step in steps(batches, 5):
        assert [k[0] for k in step] == ['sup', 'sup', 'sup_paste', 'sup_paste', 'unsup',
                                        'unsup_source']
        assert step[-1][2] == -1  # no ACM state installed: plain CutMix source


def test_every_key_carries_its_pipeline_seed_keyed_by_rank_step_role_and_position(
        monkeypatch):
    batches = make_batches(monkeypatch, rank=1, world_size=2, batch_size=2, num_unlabeled=1)
    first, second = steps(batches, 2)
    assert all(isinstance(k, SampleKey) and k.seed is not None for k in first + second)
    assert first[0].seed == derive_seed(3, PIPELINE, 1, 0, 0, 0)  # step 0, 'sup' #0
    assert first[1].seed == derive_seed(3, PIPELINE, 1, 0, 0, 1)  # 'sup' #1
    assert second[5].seed == derive_seed(3, PIPELINE, 1, 1, 3, 0)  # step 1, 'unsup_source' #0
    seeds = [k.seed for k in first + second]
    assert len(set(seeds)) == len(seeds)  # every sample its own augmentation draws
    rank0 = steps(make_batches(monkeypatch, rank=0, world_size=2, batch_size=2,
                               num_unlabeled=1), 1)[0]
    assert {k.seed for k in rank0}.isdisjoint(seeds)


def test_without_paste_pipeline_or_unlabeled(monkeypatch):
    batches = make_batches(monkeypatch, batch_size=3, num_unlabeled=0, paste=False)
    assert batches.composition() == dict(sup=3, sup_paste=0, unsup=0, unsup_source=0)
    assert all([k[0] for k in step] == ['sup'] * 3 for step in steps(batches, 2))


def test_batch_size_counts_labeled_images_with_or_without_paste(monkeypatch):
    with_paste = steps(make_batches(monkeypatch, batch_size=2, num_unlabeled=1), 1)[0]
    without = steps(make_batches(monkeypatch, batch_size=2, num_unlabeled=1, paste=False), 1)[0]
    assert [k[0] for k in without] == ['sup', 'sup', 'unsup', 'unsup_source']
    # The same labeled and unlabeled stream positions; only the paste keys go.
    assert [k for k in with_paste if k[0] in ('sup', 'unsup')] == \
        [k for k in without if k[0] in ('sup', 'unsup')]


def test_streams_are_endless_permutations_and_reproducible(monkeypatch):
    batches = make_batches(monkeypatch, batch_size=2, num_unlabeled=2)
    labeled = [k[1] for s in steps(batches, 10) for k in s if k[0] == 'sup']
    assert sorted(labeled[:10]) == list(range(10)) and sorted(labeled[10:]) == list(range(10))
    assert labeled[:10] != labeled[10:]  # reshuffled every pass
    again = make_batches(monkeypatch, batch_size=2, num_unlabeled=2)
    assert steps(again, 10) == steps(make_batches(monkeypatch, batch_size=2,
                                                  num_unlabeled=2), 10)
    other_seed = make_batches(monkeypatch, batch_size=2, num_unlabeled=2, seed=4)
    assert steps(other_seed, 10) != steps(again, 10)


def test_ranks_see_different_images(monkeypatch):
    rank0 = steps(make_batches(monkeypatch, rank=0, world_size=2), 2)
    rank1 = steps(make_batches(monkeypatch, rank=1, world_size=2), 2)
    for role in ('sup', 'unsup'):
        seen0 = {k[1] for s in rank0 for k in s if k[0] == role}
        seen1 = {k[1] for s in rank1 for k in s if k[0] == role}
        assert seen0.isdisjoint(seen1), role  # one pass is split between ranks


def test_installed_acm_state_chooses_the_sources(monkeypatch):
    batches = make_batches(monkeypatch)
    presence = torch.zeros(3, 20, dtype=torch.bool)
    presence[:, 13] = True  # image 13 holds every class
    batches.sampler.acm_state = ACMSourceState(4, torch.zeros(3), presence)
    source = steps(batches, 1)[0][-1]
    assert (source.role, source.index) == ('unsup_source', 13) and 0 <= source.acm_class < 3


def test_length_is_the_steps_of_one_pass_over_the_rank_labeled_share(monkeypatch):
    assert len(make_batches(monkeypatch, batch_size=3)) == 4  # ceil(10 / 3)
    assert len(make_batches(monkeypatch, rank=1, world_size=3, batch_size=2)) == 2  # 4 / 2


@pytest.mark.parametrize('batch_size', [0, -1, 1.5, True])
def test_bad_batch_size_is_refused_naming_the_key(monkeypatch, batch_size):
    with pytest.raises(ValueError, match=r'train_dataloader\.batch_size'):
        make_batches(monkeypatch, batch_size=batch_size)


def test_bad_num_unlabeled_is_refused_naming_the_key(monkeypatch):
    with pytest.raises(ValueError, match=r'train_dataloader\.sampler\.num_unlabeled'):
        make_batches(monkeypatch, num_unlabeled=-1)


def test_bad_acm_lag_is_refused_naming_the_key(monkeypatch):
    with pytest.raises(ValueError, match=r'train_dataloader\.sampler\.acm_lag'):
        make_batches(monkeypatch, acm_lag=0)


def test_batch_sampler_refuses_another_sampler():
    with pytest.raises(TypeError, match=r"train_dataloader\.sampler=dict\(type='SemiSegSampler'"):
        SemiSegBatchSampler(range(4), batch_size=2)


def test_sampler_without_the_batch_sampler_names_the_missing_key(monkeypatch):
    monkeypatch.setattr(semi_seg_sampler, 'get_dist_info', lambda: (0, 1))
    sampler = SemiSegSampler(fake_dataset(), seed=0)
    hint = r"train_dataloader\.batch_sampler=dict\(type='SemiSegBatchSampler'\)"
    with pytest.raises(RuntimeError, match=hint):
        iter(sampler)
    loader = DataLoader(list(range(30)), sampler=sampler, batch_size=2)  # the torch default
    with pytest.raises(RuntimeError, match=hint):
        next(iter(loader))


def test_semi_sampler_of_finds_it_in_either_place_or_says_none(monkeypatch):
    batches = make_batches(monkeypatch)
    assert semi_sampler_of(DataLoader(list(range(30)), batch_sampler=batches)) is \
        batches.sampler
    other = SemiSegSampler(fake_dataset(), seed=0)
    assert semi_sampler_of(DataLoader(list(range(30)), sampler=other, batch_size=2)) is other
    assert semi_sampler_of(DataLoader(list(range(30)), batch_size=2)) is None
    assert semi_sampler_of(dict(batch_size=2)) is None  # a loader config not built yet


class KeyDataset(Dataset):
    """Returns its keys: what the loader asks for is what a batch holds."""

    def __init__(self, paste):
        self.labeled, self.unlabeled = [None] * 5, [None] * 9
        self.paste = object() if paste else None

    def __len__(self):
        return 14

    def __getitem__(self, key):
        return dict(role=key[0], index=key[1])


@pytest.mark.parametrize('paste', [True, False])
def test_runner_builds_the_loader_from_the_config_keys(paste):
    init_default_scope('mmseg')
    loader = Runner.build_dataloader(
        dict(batch_size=2, num_workers=0, dataset=KeyDataset(paste),
             sampler=dict(type='SemiSegSampler', num_unlabeled=1),
             batch_sampler=dict(type='SemiSegBatchSampler')), seed=0)
    assert isinstance(loader.batch_sampler, SemiSegBatchSampler)
    assert semi_sampler_of(loader) is loader.batch_sampler.sampler
    assert len(loader) == 3
    batch = next(iter(loader))  # pseudo_collate: a dict of lists
    assert batch['role'] == \
        ['sup', 'sup'] + ['sup_paste'] * (2 if paste else 0) + ['unsup', 'unsup_source']
