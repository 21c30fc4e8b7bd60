import logging
import os
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ael_mmseg.datasets.samplers import ACMSourceState
from ael_mmseg.engine.hooks import AELHook
from ael_mmseg.models.segmentors import AELStepRecord
from ael_mmseg.models.utils import aes_sampling_rates
from ael_mmseg.utils.keyed_random import SLOT_AES_MIXED
from helpers.processes import gather_from_ranks
from helpers.stock_tools import TOY_CONFIG

SIZE = 32


def build_model():
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.data_preprocessor.size = (SIZE, SIZE)
    cfg.semi_train_cfg.update(warmup_iters=0, rampup_iters=0)
    cfg.confidence_bank.momentum = 0.5
    torch.manual_seed(0)  # identical initial weights on every rank
    model = MODELS.build(cfg)
    model.copy_student_to_teacher()
    model.cutmix.resize_presence(16)
    return model


def make_batch(seed, first_unlabeled):
    """2 labeled + 2 paste + 1 CutMix pair; labels drawn from the seed."""
    g = torch.Generator().manual_seed(seed)
    roles = ['sup', 'sup', 'sup_paste', 'sup_paste', 'unsup', 'unsup_source']
    inputs = torch.randn(len(roles), 3, SIZE, SIZE, generator=g)
    samples = []
    for i, role in enumerate(roles):
        sample = SegDataSample()
        sample.set_metainfo(dict(ael_role=role, sample_idx=first_unlabeled + i % 2,
                                 acm_class=-1, img_shape=(SIZE, SIZE)))
        if role.startswith('sup'):
            # each rank sees a different class subset
            high = 10 if seed % 2 else 5
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, high, (1, SIZE, SIZE), generator=g))
        samples.append(sample)
    return inputs, samples


def fake_runner(model, iteration=0):
    return SimpleNamespace(model=model, iter=iteration)


def test_after_train_iter_applies_eq7_and_writes_presence():
    model = build_model()
    hook = AELHook()
    MessageHub.get_current_instance().update_info('iter', 3)
    model.loss(*make_batch(seed=1, first_unlabeled=6))
    sums, counts = (model.step_record.confidence_sums, model.step_record.confidence_counts)
    sums, counts = sums.clone(), counts.clone()
    sample_idx, presence = (model.step_record.presence_indices, model.step_record.presence_rows)
    hook.after_train_iter(fake_runner(model, 3), 0)
    expected = torch.where(counts > 0, sums / counts.clamp_min(1), torch.zeros(10))
    assert torch.allclose(model.confidence_bank.confidence, expected, atol=1e-6)
    assert torch.equal(model.cutmix.presence[:, sample_idx].t(), presence)
    assert model.step_record is None


def test_after_train_iter_feeds_the_acm_state_with_the_rows_written():
    model = build_model()
    hook = AELHook()
    hook.acm_state = ACMSourceState(2, model.confidence_bank.confidence, model.cutmix.presence, 3)
    MessageHub.get_current_instance().update_info('iter', 3)
    model.loss(*make_batch(seed=1, first_unlabeled=6))
    hook.after_train_iter(fake_runner(model, 3), 0)
    state = hook.acm_state
    assert state.latest_step == 4 and state.base_step == 3
    assert torch.equal(torch.from_numpy(state.confidence_at(4)), model.confidence_bank.confidence)
    for cls in range(10):
        assert state.holders_at(4, cls).tolist() == \
            torch.nonzero(model.cutmix.presence[cls]).flatten().tolist()
        assert state.holders_at(3, cls).tolist() == []  # the state before the step


def _by_value(*items):
    """Tensors as numpy copies: a tensor in a multiprocessing queue is shared through a
    file descriptor, which is gone when the worker exits before the parent reads it."""
    return tuple(i.detach().cpu().numpy().copy() if torch.is_tensor(i) else i for i in items)


def _as_tensors(items):
    return tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in items)


def _worker(rank, world_size, port, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    model = build_model()
    hook = AELHook()
    hook.acm_state = ACMSourceState(1, model.confidence_bank.confidence,
                                    model.cutmix.presence)
    for step in range(3):
        MessageHub.get_current_instance().update_info('iter', step)
        # ranks see different labels and different unlabeled images
        losses = model.loss(*make_batch(seed=10 * step + rank, first_unlabeled=2 * rank))
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        local_counts = model.step_record.confidence_counts.clone()
        hook.after_train_iter(fake_runner(model, step), step)
        queue.put(_by_value(rank, step, model.confidence_bank.ema,
                            model.confidence_bank.num_updates, model.cutmix.presence,
                            local_counts))
    # Both ranks hold crops of unlabeled image 9, with different rows, and
    # rank 1 holds it twice: every rank and every host mirror must get the
    # same column, the OR of the four rows.
    rows = torch.zeros(4, 10, dtype=torch.bool)
    rows[0, [0, 4]] = rows[1, [1, 9]] = rows[2, 2] = True  # row 3: no class
    zeros = torch.zeros(10)
    model._step_record = AELStepRecord(zeros, zeros, torch.tensor([9, 3]) if rank == 0 else
                                       torch.tensor([9, 9]), rows[2 * rank:2 * rank + 2])
    hook.after_train_iter(fake_runner(model, 3), 3)
    # The host state the sampler draws from holds the same table.
    mirror = torch.zeros_like(model.cutmix.presence)
    for cls in range(10):
        mirror[cls, torch.from_numpy(hook.acm_state.holders_at(4, cls))] = True
    queue.put(_by_value(rank, 'repeated', model.cutmix.presence, mirror))


def test_bank_and_presence_identical_on_two_ranks_with_different_labels():
    results = [_as_tensors(items) for items in gather_from_ranks(_worker, 2, 8)]
    repeated = {r[0]: r[2:] for r in results if r[1] == 'repeated'}
    (table0, mirror0), (table1, mirror1) = repeated[0], repeated[1]
    assert torch.equal(table0, table1) and torch.equal(table0, mirror0)
    assert torch.equal(table1, mirror1)
    expected = torch.zeros(10, dtype=torch.bool)
    expected[[0, 2, 4]] = True  # rows 0 (rank 0) and 2, 3 (rank 1): image 9
    assert torch.equal(table0[:, 9], expected)
    assert torch.equal(table0[:, 3], torch.tensor([False, True] + [False] * 7 + [True]))
    by_step = {}
    per_step = [r for r in results if r[1] != 'repeated']
    for rank, step, ema, updates, presence, local_counts in per_step:
        by_step.setdefault(step, {})[rank] = (ema, updates, presence, local_counts)
    for step, ranks in by_step.items():
        (ema0, up0, pres0, counts0), (ema1, up1, pres1, counts1) = ranks[0], ranks[1]
        assert not torch.equal(counts0, counts1)  # the ranks did see different labels
        assert torch.equal(ema0, ema1) and torch.equal(up0, up1), step
        assert torch.equal(pres0, pres1), step
        # rank 0 saw only classes < 5, yet classes >= 5 were updated (from rank 1)
        assert torch.all(up0[5:] == step + 1)
    # both ranks' unlabeled images (0,1 and 2,3) are in the shared table
    final = by_step[2][0][2]
    assert final[:, :4].any(dim=0).all()


def test_dataset_and_model_class_counts_must_agree():
    model = SimpleNamespace(finish_step=lambda: None, num_classes=10, uses_acm=False,
                            update_teacher=None, copy_student_to_teacher=lambda: None,
                            set_key_seed=lambda seed: None)
    dataset = SimpleNamespace(metainfo=dict(classes=[f'c{i}' for i in range(19)]))
    runner = SimpleNamespace(model=model, iter=0, seed=0,
                             train_dataloader=SimpleNamespace(dataset=dataset))
    with pytest.raises(ValueError, match=r'dataset has 19 classes .* num_classes=10'):
        AELHook().before_train(runner)


def test_logger_hook_writes_what_training_uses():
    model = build_model()
    model.unsup_loss.beta = 2.0
    model.confidence_bank.update(torch.linspace(0.1, 0.9, 10), torch.ones(10))
    written = {}
    classes = [f'c{i}' for i in range(10)]
    runner = SimpleNamespace(
        model=model, iter=24, train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=classes))),
        visualizer=SimpleNamespace(add_scalars=lambda scalars, step: written.update(scalars)),
        message_hub=MessageHub.get_instance('test_logger_hook'))
    hook = AELHook(log_interval=25)
    hook.after_train_iter(runner, 24)
    confidence = model.confidence_bank.confidence
    rates = aes_sampling_rates(confidence, 2.0)  # the rates the loss gets (beta of the loss)
    assert model.unsup_loss_kwargs(SLOT_AES_MIXED, torch.device('cpu'))[
        'sampling_rates'].tolist() == rates.tolist()
    for c, name in enumerate(classes):
        assert written[f'ael/aes_rate/{name}'] == pytest.approx(rates[c].item())
        assert written[f'ael/conf/{name}'] == pytest.approx(confidence[c].item())
    excluded = model.copy_paste.excluded_classes
    assert excluded and all(written[f'ael/acp_prob/c{c}'] == 0.0 for c in excluded)
    assert sum(written[f'ael/acm_prob/{name}'] for name in classes) == pytest.approx(1.0)
    assert runner.message_hub.get_scalar('train/ael_min_conf').current() == pytest.approx(
        confidence.min().item())


def _resume_runner(iteration):
    model = SimpleNamespace(update_teacher=None, copy_student_to_teacher=lambda: None,
                            set_key_seed=lambda seed: None)
    return SimpleNamespace(model=model, iter=iteration, seed=0,
                           train_dataloader=SimpleNamespace(dataset=None))


def _warnings_of_resume(saved):
    """The warnings AELHook logs when a run resumes at iteration 12 from ``saved``."""
    hook = AELHook()
    hook.after_load_checkpoint(None, dict(ael_state=saved, state_dict={}))
    messages = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        hook.before_train(_resume_runner(iteration=12))
    finally:
        logger.removeHandler(handler)
    return hook, messages


@pytest.mark.parametrize('saved, expected', [
    (dict(key_seed=7, world_size=1), r"key seed was 7, this run's is 0"),
    (dict(key_seed=0, world_size=8), r'on 1 process\(es\) a run trained on 8: .* batch_size x 1'),
])
def test_resume_with_another_seed_or_process_count_warns(saved, expected):
    _, messages = _warnings_of_resume(saved)
    assert len(messages) == 1 and re.search(expected, messages[0]), messages


def test_resume_with_the_same_seed_and_process_count_is_quiet():
    hook, messages = _warnings_of_resume(dict(key_seed=0, world_size=1))
    assert messages == []
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    assert checkpoint['ael_state'] == dict(key_seed=0, world_size=1, acm_source=None)
