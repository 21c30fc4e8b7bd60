import itertools
from types import SimpleNamespace

import pytest
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from ael_mmseg.datasets import SemiSegBatchSampler, semi_sampler_of
from ael_mmseg.datasets.samplers import semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler


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
        assert step[-1][2] == -1  # no selector installed: plain CutMix source


def test_keys_and_draws_are_those_of_the_per_key_sampler(monkeypatch):
    # Recorded with the sampler before the batch sampler existed (it yielded
    # one key at a time): same seed, rank 1 of 2, 2 labeled + paste, 1 pair.
    batches = make_batches(monkeypatch, rank=1, world_size=2, batch_size=2, num_unlabeled=1)
    assert steps(batches, 3) == [
        [('sup', 0), ('sup', 7), ('sup_paste', 8), ('sup_paste', 3), ('unsup', 14),
         ('unsup_source', 14, -1)],
        [('sup', 5), ('sup', 9), ('sup_paste', 1), ('sup_paste', 1), ('unsup', 2),
         ('unsup_source', 17, -1)],
        [('sup', 4), ('sup', 8), ('sup_paste', 4), ('sup_paste', 6), ('unsup', 16),
         ('unsup_source', 0, -1)]]


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


def test_installed_source_selector_chooses_acm_sources(monkeypatch):
    batches = make_batches(monkeypatch)
    batches.sampler.source_selector = lambda generator: (7, 13)
    assert steps(batches, 1)[0][-1] == ('unsup_source', 13, 7)


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


@pytest.mark.parametrize('name, hint', [('num_labeled', r'train_dataloader\.batch_size'),
                                        ('copy_paste', r'dataset\.paste_pipeline')])
def test_removed_sampler_arguments_say_where_they_went(monkeypatch, name, hint):
    with pytest.raises(TypeError, match=rf'sampler\.{name} no longer exists.*{hint}'):
        make_batches(monkeypatch, **{name: 2})


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
