"""SemiSegSampler.skip_to: a stream started at step k equals steps k, k+1, ... of a full one."""
import itertools
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ael_mmseg.datasets.samplers import SemiSegBatchSampler, semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler
from ael_mmseg.models.augmentations.adaptive_cutmix import AdaptiveCutMix
from ael_mmseg.utils.rng_state import get_data_rng_state

NUM_LABELED_IMAGES, NUM_UNLABELED_IMAGES, NUM_CLASSES = 7, 11, 5


def make_sampler(monkeypatch, rank=0, world_size=1, acm=False, batch_size=2, paste=True,
                 **kwargs):
    """A SemiSegSampler with its SemiSegBatchSampler (``batch_size`` labeled per step)."""
    monkeypatch.setattr(semi_seg_sampler, 'get_dist_info', lambda: (rank, world_size))
    dataset = SimpleNamespace(labeled=[None] * NUM_LABELED_IMAGES,
                              unlabeled=[None] * NUM_UNLABELED_IMAGES,
                              paste=object() if paste else None)
    sampler = SemiSegSampler(dataset, seed=5, **kwargs)
    SemiSegBatchSampler(sampler, batch_size=batch_size)
    if acm:  # the adaptive ACM choice, as ACMSourceHook installs it
        cutmix = AdaptiveCutMix(num_classes=NUM_CLASSES)
        cutmix.resize_presence(NUM_UNLABELED_IMAGES)
        presence = torch.rand(NUM_CLASSES, NUM_UNLABELED_IMAGES,
                              generator=torch.Generator().manual_seed(0)) > 0.6
        presence[1] = False  # a class no image holds: the uniform fallback
        confidence = torch.linspace(0.2, 0.9, NUM_CLASSES)
        sampler.source_selector = lambda g: cutmix.sample_source(confidence, g, presence)
    return sampler


def steps(iterator, count):
    return list(itertools.islice(iterator, count))


@pytest.mark.parametrize('rank, world_size', [(0, 1), (1, 3)])
@pytest.mark.parametrize('kwargs', [dict(batch_size=2, num_unlabeled=1),
                                    dict(batch_size=3, num_unlabeled=2, paste=False),
                                    dict(batch_size=1, num_unlabeled=0)])
@pytest.mark.parametrize('acm', [False, True])
@pytest.mark.parametrize('start', [1, 4, 23])  # 23 steps: several passes over each stream
def test_skipped_stream_continues_the_full_stream(monkeypatch, rank, world_size, kwargs, acm,
                                                  start):
    full = make_sampler(monkeypatch, rank, world_size, acm, **kwargs)
    expected = steps(iter(full), start + 6)[start:]
    skipped = make_sampler(monkeypatch, rank, world_size, acm, **kwargs)
    skipped.skip_to(start)
    assert steps(iter(skipped), 6) == expected
    # The draws after those steps match too (same generator state).
    assert torch.equal(skipped.generator.get_state(), full.generator.get_state())


def test_skip_applies_to_the_next_iterator_only(monkeypatch):
    sampler = make_sampler(monkeypatch, num_unlabeled=1)
    first = steps(iter(make_sampler(monkeypatch, num_unlabeled=1)), 1)
    sampler.skip_to(3)
    assert steps(iter(sampler), 1) != first
    fresh = make_sampler(monkeypatch, num_unlabeled=1)
    later = iter(sampler)  # a second iterator starts at step 0 of the streams again
    assert [k for k in steps(later, 1)[0] if k[0] in ('sup', 'unsup')] == \
        [k for k in steps(iter(fresh), 1)[0] if k[0] in ('sup', 'unsup')]


def test_data_rng_of_the_resumed_step_is_restored_before_its_first_key(monkeypatch):
    np.random.seed(1)
    random.seed(1)
    saved = get_data_rng_state()
    expected = (np.random.rand(), random.random())
    np.random.seed(99)
    random.seed(99)
    sampler = make_sampler(monkeypatch, num_unlabeled=1)
    sampler.resume_data_rng(4, saved)
    sampler.skip_to(4)
    next(iter(sampler))
    assert (np.random.rand(), random.random()) == expected


def test_data_rng_of_another_step_is_not_used_and_the_log_says_so(monkeypatch):
    np.random.seed(1)
    saved = get_data_rng_state()
    np.random.seed(99)
    expected = np.random.RandomState(99).rand()
    sampler = make_sampler(monkeypatch, num_unlabeled=1)
    sampler.resume_data_rng(5, saved)
    sampler.skip_to(4)
    logs = []
    monkeypatch.setattr(semi_seg_sampler, 'print_log', lambda msg, **kw: logs.append(msg))
    next(iter(sampler))
    assert np.random.rand() == expected
    assert any('starting at step 4 without the data pipelines' in m for m in logs)


def test_a_source_choice_without_a_fixed_number_of_draws_is_refused(monkeypatch):
    sampler = make_sampler(monkeypatch, num_unlabeled=1)
    sampler.source_selector = lambda g: (0, int(torch.rand(100, generator=g).argmax()))
    sampler.skip_to(2)
    with pytest.raises(RuntimeError, match='fixed number'):
        next(iter(sampler))


def test_negative_start_is_refused(monkeypatch):
    with pytest.raises(ValueError, match='step must be >= 0'):
        make_sampler(monkeypatch).skip_to(-1)
