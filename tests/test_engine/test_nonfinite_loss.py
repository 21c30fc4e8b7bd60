"""A NaN/inf loss stops training (FiniteLossHook) or skips the step ('skip' mode)."""
import copy
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS, MODELS

import ael_mmseg.models.segmentors.mean_teacher_segmentor as mean_teacher_module
from helpers.fake_batch import make_semi_batch, toy_model_cfg

SIZE = 32


def _runner(iteration, **scalars):
    hub = MessageHub.get_instance(f'nonfinite_{iteration}_{len(scalars)}')
    for key, value in scalars.items():
        hub.update_scalar(f'train/{key}', value)
    return SimpleNamespace(iter=iteration, message_hub=hub)


def test_hook_stops_naming_the_iteration_and_the_loss():
    hook = HOOKS.build(dict(type='FiniteLossHook'))
    runner = _runner(41, **{'loss': math.nan, 'sup.decode.loss_ce': 0.7,
                            'unsup.loss_ael': math.inf})
    outputs = {'loss': None, 'sup.decode.loss_ce': None, 'unsup.loss_ael': None}
    with pytest.raises(FloatingPointError,
                       match=r'iteration 42: loss=nan, unsup.loss_ael=inf') as error:
        hook.after_train_iter(runner, 41, outputs=outputs)
    assert 'sup.decode.loss_ce' not in str(error.value)
    assert "nonfinite_loss=\"skip\"" in str(error.value)


def test_hook_passes_finite_losses():
    hook = HOOKS.build(dict(type='FiniteLossHook'))
    runner = _runner(3, **{'loss': 1.5, 'sup.decode.loss_ce': 0.7})
    hook.after_train_iter(runner, 3, outputs={'loss': None, 'sup.decode.loss_ce': None})
    hook.after_train_iter(runner, 3, outputs=None)


def _model(**semi_train_cfg):
    cfg = copy.deepcopy(toy_model_cfg(SIZE))
    cfg.semi_train_cfg.update(semi_train_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.copy_student_to_teacher()
    model.cutmix.resize_presence(4)
    return model


def _data(nan=False):
    inputs, samples = make_semi_batch(2, 1, SIZE, 10, seed=0)
    if nan:
        inputs[0, 0, :4, :4] = math.nan
    return dict(inputs=list(inputs), data_samples=samples)


def _params(model):
    return [p.detach().clone() for p in model.student.parameters()]


def test_skip_mode_skips_the_update_and_the_bank_with_a_warning(monkeypatch):
    model = _model(nonfinite_loss='skip')
    optim = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.1, momentum=0.9))
    MessageHub.get_current_instance().update_info('iter', 6)
    messages = []
    monkeypatch.setattr(mean_teacher_module, 'print_log',
                        lambda msg, *args, **kwargs: messages.append(msg))

    before = _params(model)
    buffers = [b.clone() for b in model.buffers() if b.dtype.is_floating_point]
    log_vars = model.train_step(_data(nan=True), optim)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model)))
    # BN running statistics (student and teacher) were rolled back too.
    after = [b for b in model.buffers() if b.dtype.is_floating_point]
    assert all(torch.equal(a, b) for a, b in zip(buffers, after))
    assert model.step_record is None
    assert 'loss' not in log_vars and all(math.isfinite(float(v)) for v in log_vars.values())
    assert len(messages) == 1 and 'iteration 7' in messages[0]
    assert 'loss=nan' in messages[0] and 'sup.decode.loss_ce=nan' in messages[0]

    # A finite step right after updates the student as usual.
    log_vars = model.train_step(_data(), optim)
    assert math.isfinite(float(log_vars['loss']))
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(model)))
    assert len(messages) == 1


def test_raise_mode_leaves_the_step_to_mmengine():
    model = _model()
    optim = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.1))
    log_vars = model.train_step(_data(nan=True), optim)
    # The step ran (FiniteLossHook, after it, stops the run before any checkpoint).
    assert math.isnan(float(log_vars['loss']))


def test_unknown_nonfinite_option_is_refused():
    with pytest.raises(ValueError, match="nonfinite_loss must be 'raise' or 'skip', got 'warn'"):
        _model(nonfinite_loss='warn')


def test_skip_mode_refuses_gradient_accumulation():
    model = _model(nonfinite_loss='skip')
    optim = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.1),
                         accumulative_counts=2)
    with pytest.raises(ValueError, match='accumulative_counts > 1'):
        model.train_step(_data(), optim)
