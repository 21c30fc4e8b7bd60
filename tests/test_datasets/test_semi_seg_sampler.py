import itertools
from types import SimpleNamespace

import pytest

from ael_mmseg.datasets.samplers import semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler


def fake_dataset(num_labeled=10, num_unlabeled=20):
    return SimpleNamespace(labeled=[None] * num_labeled, unlabeled=[None] * num_unlabeled)


def make_sampler(monkeypatch, rank=0, world_size=1, **kwargs):
    monkeypatch.setattr(semi_seg_sampler, 'get_dist_info', lambda: (rank, world_size))
    return SemiSegSampler(fake_dataset(), seed=kwargs.pop('seed', 3), **kwargs)


def steps(sampler, count):
    it = iter(sampler)
    return [list(itertools.islice(it, sampler.batch_size)) for _ in range(count)]


def test_every_step_has_the_configured_composition(monkeypatch):
    sampler = make_sampler(monkeypatch, num_labeled=2, num_unlabeled=1)
    assert sampler.batch_size == 6
    for step in steps(sampler, 5):
        assert [k[0] for k in step] == ['sup', 'sup', 'sup_paste', 'sup_paste', 'unsup',
                                        'unsup_source']
        assert step[-1][2] == -1  # no selector installed: plain CutMix source


def test_without_copy_paste_or_unlabeled(monkeypatch):
    sampler = make_sampler(monkeypatch, num_labeled=3, num_unlabeled=0, copy_paste=False)
    assert sampler.batch_size == 3
    assert all(k[0] == 'sup' for k in steps(sampler, 2)[1])


def test_streams_are_endless_permutations_and_reproducible(monkeypatch):
    sampler = make_sampler(monkeypatch, num_labeled=2, num_unlabeled=2)
    labeled = [k[1] for s in steps(sampler, 10) for k in s if k[0] == 'sup']
    assert sorted(labeled[:10]) == list(range(10)) and sorted(labeled[10:]) == list(range(10))
    assert labeled[:10] != labeled[10:]  # reshuffled every pass
    again = make_sampler(monkeypatch, num_labeled=2, num_unlabeled=2)
    assert steps(again, 10) == steps(make_sampler(monkeypatch, num_labeled=2,
                                                  num_unlabeled=2), 10)
    other_seed = make_sampler(monkeypatch, num_labeled=2, num_unlabeled=2, seed=4)
    assert steps(other_seed, 10) != steps(again, 10)


def test_ranks_see_different_images(monkeypatch):
    rank0 = steps(make_sampler(monkeypatch, rank=0, world_size=2), 2)
    rank1 = steps(make_sampler(monkeypatch, rank=1, world_size=2), 2)
    for role in ('sup', 'unsup'):
        seen0 = {k[1] for s in rank0 for k in s if k[0] == role}
        seen1 = {k[1] for s in rank1 for k in s if k[0] == role}
        assert seen0.isdisjoint(seen1), role  # one pass is split between ranks


def test_installed_source_selector_chooses_acm_sources(monkeypatch):
    sampler = make_sampler(monkeypatch)
    sampler.source_selector = lambda generator: (7, 13)
    assert steps(sampler, 1)[0][-1] == ('unsup_source', 13, 7)


@pytest.mark.parametrize('kwargs', [dict(num_labeled=0), dict(num_unlabeled=-1)])
def test_bad_counts_are_refused(monkeypatch, kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        make_sampler(monkeypatch, **kwargs)
