"""Keyed sampling: a step's keys are a function of (seed, rank, step), ACM reads a lagged state."""
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ael_mmseg.datasets.samplers import ACMSourceState, SemiSegBatchSampler, semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler

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
    if acm:  # as AELHook installs it, with a history of 30 pushed steps
        sampler.acm_state = pushed_state(30, lag=3)
    return sampler


def random_step(step, generator):
    confidence = torch.rand(NUM_CLASSES, generator=generator)
    indices = torch.randint(NUM_UNLABELED_IMAGES, (3, ), generator=generator)
    rows = torch.rand(3, NUM_CLASSES, generator=generator) > 0.5
    return confidence, indices, rows


def pushed_state(num_steps, lag):
    generator = torch.Generator().manual_seed(0)
    state = ACMSourceState(lag, torch.full((NUM_CLASSES, ), 0.5),
                           torch.zeros(NUM_CLASSES, NUM_UNLABELED_IMAGES, dtype=torch.bool))
    for step in range(1, num_steps + 1):
        state.push(step, *random_step(step, generator))
    return state


def steps(iterator, count):
    return list(itertools.islice(iterator, count))


@pytest.mark.parametrize('rank, world_size', [(0, 1), (1, 3)])
@pytest.mark.parametrize('kwargs', [dict(batch_size=2, num_unlabeled=1),
                                    dict(batch_size=3, num_unlabeled=2, paste=False),
                                    dict(batch_size=1, num_unlabeled=0)])
@pytest.mark.parametrize('acm', [False, True])
@pytest.mark.parametrize('start', [1, 4, 23])  # 23 steps: several passes over each stream
def test_a_stream_started_at_a_step_continues_the_full_stream(monkeypatch, rank, world_size,
                                                              kwargs, acm, start):
    full = make_sampler(monkeypatch, rank, world_size, acm, **kwargs)
    expected = steps(iter(full), start + 6)[start:]
    started = make_sampler(monkeypatch, rank, world_size, acm, **kwargs)
    started.start_at(start)
    assert steps(iter(started), 6) == expected


def test_keys_do_not_depend_on_what_was_drawn_before(monkeypatch):
    sampler = make_sampler(monkeypatch, num_unlabeled=2)
    first = steps(iter(sampler), 5)
    assert steps(iter(sampler), 5) == first  # a second iterator draws the same
    np.random.seed(123)
    torch.manual_seed(123)  # global generators play no part
    assert steps(iter(make_sampler(monkeypatch, num_unlabeled=2)), 5) == first


def test_ranks_draw_different_paste_and_cutmix_sources(monkeypatch):
    rank0 = steps(iter(make_sampler(monkeypatch, 0, 2, num_unlabeled=2)), 8)
    rank1 = steps(iter(make_sampler(monkeypatch, 1, 2, num_unlabeled=2)), 8)
    for role in ('sup_paste', 'unsup_source'):
        assert [k.index for s in rank0 for k in s if k.role == role] != \
            [k.index for s in rank1 for k in s if k.role == role], role


def test_negative_start_is_refused(monkeypatch):
    with pytest.raises(ValueError, match='iteration must be >= 0'):
        make_sampler(monkeypatch).start_at(-1)


# ---------------------------------------------------------------- ACMSourceState
def test_the_choice_for_step_t_reads_the_state_after_t_minus_lag_steps():
    lag = 3
    generator = torch.Generator().manual_seed(1)
    written = [random_step(s, generator) for s in range(1, 11)]
    state = ACMSourceState(lag, torch.full((NUM_CLASSES, ), 0.5),
                           torch.zeros(NUM_CLASSES, NUM_UNLABELED_IMAGES, dtype=torch.bool))
    table = torch.zeros(NUM_CLASSES, NUM_UNLABELED_IMAGES, dtype=torch.bool)
    tables, confidences = [table.clone()], [torch.full((NUM_CLASSES, ), 0.5)]
    for step, (confidence, indices, rows) in enumerate(written, 1):
        state.push(step, confidence, indices, rows)
        table[:, indices] = rows.t()
        tables.append(table.clone())
        confidences.append(confidence)
        assert state.base_step == max(0, step - lag)  # the base follows lag steps behind
        for t in range(step, step + lag + 1):  # every step a loader may draw now
            k = state.state_step(t)
            assert k == max(0, t - lag)
            assert np.allclose(state.confidence_at(k), confidences[k].numpy())
            for cls in range(NUM_CLASSES):
                assert state.holders_at(k, cls).tolist() == \
                    torch.nonzero(tables[k][cls]).flatten().tolist()
    with pytest.raises(RuntimeError, match=r'prefetches further than .*acm_lag=3'):
        state.state_step(10 + lag + 1)


def test_state_dict_round_trip_gives_the_same_choices():
    state = pushed_state(12, lag=4)
    copy = ACMSourceState.from_state_dict(state.state_dict())
    assert copy.base_step == state.base_step and copy.latest_step == state.latest_step == 12
    for t in range(12, 17):
        for pair in range(3):
            assert copy.sample_source(t, np.random.default_rng(pair)) == \
                state.sample_source(t, np.random.default_rng(pair))


def test_a_push_writes_the_rows_of_the_step_only():
    state = ACMSourceState(1, torch.zeros(2), torch.zeros(2, 100000, dtype=torch.bool))
    state.push(1, torch.ones(2), torch.tensor([7]), torch.tensor([[True, False]]))
    state.push(2, torch.ones(2), torch.tensor([9]), torch.tensor([[False, True]]))
    assert state.base_step == 1 and state.holders_at(1, 0).tolist() == [7]
    assert state.holders_at(2, 1).tolist() == [9]
    with pytest.raises(RuntimeError, match='pushed after step 2'):
        state.push(4, torch.ones(2), None, None)


def test_sample_source_rate_follows_softmax_and_image_holds_class():
    presence = torch.zeros(4, 10, dtype=torch.bool)
    presence[0, [0, 1, 2]] = True
    presence[1, [3, 4]] = True
    presence[2, [5, 8]] = True  # the low-confidence class
    presence[3, [9]] = True
    conf = torch.tensor([0.9, 0.9, 0.1, 0.9])
    state = ACMSourceState(1, conf, presence)
    p_low = math.exp(0.9) / (math.exp(0.9) + 3 * math.exp(0.1))
    rng = np.random.default_rng(3)
    draws = [state.sample_source(0, rng) for _ in range(8000)]
    rate = sum(c == 2 for c, _ in draws) / len(draws)
    assert abs(rate - p_low) < 4 * math.sqrt(p_low * (1 - p_low) / len(draws))
    assert all(presence[c, i] for c, i in draws)
    images_of_low = [i for c, i in draws if c == 2]
    assert abs(images_of_low.count(5) / len(images_of_low) - 0.5) < 0.05


def test_sample_source_falls_back_to_any_image_without_holder():
    presence = torch.zeros(2, 4, dtype=torch.bool)
    presence[0] = True
    state = ACMSourceState(1, torch.tensor([1.0, -20.0]), presence)
    rng = np.random.default_rng(4)
    # Class 1 is far less confident, so it is drawn most of the time.
    draws = [state.sample_source(0, rng) for _ in range(200)]
    assert {c for c, _ in draws} == {1}
    assert {i for _, i in draws} == {0, 1, 2, 3}


@pytest.mark.parametrize('conf', [torch.tensor([float('nan'), 0.5, 0.5]),
                                  torch.tensor([-float('inf'), 0.5, 0.5])])
def test_sample_source_rejects_a_bank_that_is_not_finite(conf):
    state = ACMSourceState(1, conf, torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        state.sample_source(0, np.random.default_rng(0))


def test_bad_shapes_and_lags_are_refused():
    with pytest.raises(ValueError, match='lag must be'):
        ACMSourceState(0, torch.zeros(3), torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='presence must be'):
        ACMSourceState(1, torch.zeros(3), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='covers no unlabeled image'):
        ACMSourceState(1, torch.zeros(3), torch.zeros(3, 0, dtype=torch.bool))
