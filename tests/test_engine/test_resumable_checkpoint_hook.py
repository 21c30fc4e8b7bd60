"""ResumableCheckpointHook saves the random state exactly when CheckpointHook saves."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import CheckpointHook

from ael_mmseg.engine.hooks import ACMSourceHook, ResumableCheckpointHook


def runner_at(iteration, max_iters):
    return SimpleNamespace(iter=iteration, max_iters=max_iters, train_dataloader=None,
                           logger=logging.getLogger('test_resumable_checkpoint_hook'))


@pytest.fixture
def saves(monkeypatch):
    """Stand-in for the save behind CheckpointHook._save_checkpoint: runner.save_checkpoint
    calls the hooks' before_save_checkpoint (rank 0) with the new checkpoint dict."""
    saved = []

    def save(hook, runner):
        checkpoint = {}
        hook.before_save_checkpoint(runner, checkpoint)
        saved.append((runner.iter + 1, checkpoint))

    monkeypatch.setattr(CheckpointHook, '_save_checkpoint', save)
    return saved


def test_state_is_captured_on_checkpoint_hooks_own_schedule(saves):
    hook = ResumableCheckpointHook(interval=3, by_epoch=False, save_last=True)
    states = {}
    for iteration in range(7):
        torch.rand(5)  # the step's own draws
        states[iteration + 1] = torch.get_rng_state()
        hook.after_train_iter(runner_at(iteration, 7), iteration)
    # CheckpointHook's decision: every 3 iterations and the last one.
    assert [step for step, _ in saves] == [3, 6, 7]
    for step, checkpoint in saves:
        (state, ) = checkpoint['ael_state']['torch_rng']  # one process
        assert torch.equal(state['cpu'], states[step])
        assert checkpoint['ael_state']['sampler_seed'] is None  # no SemiSegSampler here


def test_the_next_step_starts_from_the_captured_state(saves):
    hook = ResumableCheckpointHook(interval=2, by_epoch=False)
    runner = runner_at(1, 10)
    hook.after_train_iter(runner, 1)
    expected = torch.rand(3)
    torch.rand(100)  # e.g. a validation in between draws numbers
    runner.iter = 2
    hook.before_train_iter(runner, 2)
    assert torch.equal(torch.rand(3), expected)


def test_a_save_outside_the_schedule_has_no_state():
    hook = ResumableCheckpointHook(interval=2, by_epoch=False)
    checkpoint = {}
    hook.before_save_checkpoint(runner_at(0, 10), checkpoint)  # e.g. the best checkpoint
    assert checkpoint['ael_state']['torch_rng'] is None


def test_acm_source_hook_needs_the_semi_sampler_only_with_acm():
    model = SimpleNamespace(uses_acm=False)
    runner = SimpleNamespace(model=model, train_dataloader=SimpleNamespace(sampler=None))
    ACMSourceHook().before_train(runner)  # plain CutMix: nothing to install
    model.uses_acm = True
    with pytest.raises(ValueError, match=r"batch_sampler=dict\(type='SemiSegBatchSampler'\)"):
        ACMSourceHook().before_train(runner)
