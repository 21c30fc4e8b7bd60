"""The AEL training step does not synchronise host and device.

On an accelerator, reading a tensor's value on the host (``.item()``,
``if tensor:``, a boolean-mask index whose size depends on the data, ...)
stalls the host until the device has caught up. This is checked on the CPU:
every such operation of torch is wrapped so that it raises
:class:`HostSyncError` when the code that calls it (the innermost frame
outside torch itself) lives in a watched path, ``ael_mmseg/models/`` (the
confidence bank, the loss, the augmentations, the segmentor). Calls from
mmseg / mmcv / mmengine, e.g. the stock decode head's accuracy, are allowed
and only recorded.

Not covered: device-to-host copies through ``.to(...)`` (on the CPU every
tensor is already on the host, so they cannot be told apart), and ``AELHook``,
which runs after the step (its host copies for the ACM source choice are
made with ``non_blocking`` and read ``acm_lag`` steps later).
"""
import copy
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import Tensor

import ael_mmseg.models
from ael_mmseg.models.augmentations import adaptive_cutmix
from helpers.fake_batch import make_semi_batch
from helpers.stock_tools import TOY_CONFIG

SIZE = 32
NUM_CLASSES = 10
AEL_MODELS_DIR = osp.dirname(osp.abspath(ael_mmseg.models.__file__))
TORCH_DIR = osp.dirname(osp.abspath(torch.__file__))
THIS_FILE = osp.abspath(__file__)


class HostSyncError(AssertionError):
    """A watched file called an operation that waits for the device."""


def _always(*args, **kwargs) -> bool:
    return True


def _is_mask(index) -> bool:
    return isinstance(index, Tensor) and index.dtype in (torch.bool, torch.uint8)


def _mask_index(self, index, *args) -> bool:
    """``t[mask]`` / ``t[mask] = v``: the result size is the number of True values."""
    indices = index if isinstance(index, tuple) else (index, )
    return any(_is_mask(i) for i in indices)


def _condition_only(condition, *args, **kwargs) -> bool:
    """``torch.where(cond)`` is ``nonzero``; ``torch.where(cond, a, b)`` is not."""
    return not args and not kwargs


def _repeats_without_size(input, repeats=None, *args, **kwargs) -> bool:
    """Tensor ``repeats`` without ``output_size``: the size is read on the host."""
    return isinstance(repeats, Tensor) and kwargs.get('output_size') is None


# (owner, name, predicate): the call syncs when predicate(*args, **kwargs).
SYNCING_OPS: List[Tuple[object, str, Callable[..., bool]]] = [
    *[(Tensor, name, _always) for name in (
        'item', 'cpu', 'tolist', 'numpy', 'nonzero', 'argwhere', 'unique', 'unique_consecutive',
        'multinomial', 'masked_select', 'bincount', 'equal', 'allclose',
        '__bool__', '__int__', '__float__', '__index__', '__complex__')],
    (Tensor, '__getitem__', _mask_index),
    (Tensor, '__setitem__', _mask_index),
    (Tensor, 'repeat_interleave', lambda self, repeats=None, *a, **k: _repeats_without_size(
        self, repeats, *a, **k)),
    *[(torch, name, _always) for name in (
        'nonzero', 'argwhere', 'unique', 'unique_consecutive', 'multinomial', 'masked_select',
        'bincount', 'equal', 'allclose', 'is_nonzero')],
    (torch, 'where', _condition_only),
    (torch, 'repeat_interleave', _repeats_without_size),
]


class SyncDetector:
    """Wraps :data:`SYNCING_OPS`; raises when a watched file calls one.

    Args:
        watched (Sequence[str]): Directories or files whose code must not sync.
    """

    def __init__(self, watched: Sequence[str]) -> None:
        self.watched = [osp.abspath(p) for p in watched]
        self.allowed: List[Tuple[str, str]] = []  # (op, caller file) of unwatched calls
        self._wrapper_codes = set()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> 'SyncDetector':
        for owner, name, predicate in SYNCING_OPS:
            monkeypatch.setattr(owner, name, self._wrap(owner, name, predicate))
        return self

    def _wrap(self, owner, name: str, predicate: Callable[..., bool]) -> Callable:
        original = getattr(owner, name)
        label = f"{'Tensor' if owner is Tensor else 'torch'}.{name}"

        def wrapper(*args, **kwargs):
            if predicate(*args, **kwargs):
                self.check(label, sys._getframe(1))
            return original(*args, **kwargs)

        self._wrapper_codes.add(wrapper.__code__)
        return wrapper

    def _is_watched(self, filename: str) -> bool:
        filename = osp.abspath(filename)
        return any(filename == p or filename.startswith(p + osp.sep) for p in self.watched)

    def check(self, label: str, frame) -> None:
        """Blame the innermost caller outside torch (torch's Python code may sync for it)."""
        caller: Optional[object] = frame
        while caller is not None and (
                caller.f_code in self._wrapper_codes
                or caller.f_code.co_filename.startswith(TORCH_DIR + osp.sep)):
            caller = caller.f_back
        if caller is None:
            return
        filename = caller.f_code.co_filename
        if self._is_watched(filename):
            raise HostSyncError(f'{label} (a host-device sync) called from '
                                f'{filename}:{caller.f_lineno} in {caller.f_code.co_name}()')
        self.allowed.append((label, filename))


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def model_cfg():
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.data_preprocessor.size = (SIZE, SIZE)
    cfg.semi_train_cfg.update(warmup_iters=0, rampup_iters=0, pseudo_label_thresh=0.2)
    # Every AEL part on: ACP (always pasting), adaptive ACM, DR and AES.
    cfg.copy_paste.prob = 1.0
    cfg.unsup_loss.update(use_dynamic_reweighting=True, use_equalization_sampling=True)
    return cfg


def make_batch(num_labeled=2, num_pairs=2, seed=0):
    """A normalised batch with every AEL role; each source has an ACM class."""
    return make_semi_batch(num_labeled, num_pairs, SIZE, NUM_CLASSES, seed,
                           acm_class=lambda i: 3 + i % 2, ignored_rows=4)


def build_model(model_cfg):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.copy_student_to_teacher()
    model.cutmix.resize_presence(4)
    # A bank that has seen a few classes, so ACP / AES rates are not uniform.
    sums = torch.linspace(0.0, 9.0, NUM_CLASSES)
    counts = torch.tensor([10.0] * 7 + [0.0] * 3)
    model.confidence_bank.update(sums, counts)
    MessageHub.get_current_instance().update_info('iter', 10)
    return model


@pytest.fixture
def accelerator_path(monkeypatch):
    """Take the accelerator code path of AdaptiveCutMix on the CPU.

    Its value checks (``classes`` in [-1, C), teacher labels in range) run
    only where they are free, on the host (``_on_host``), and are skipped on
    an accelerator; :func:`test_host_only_value_checks_are_seen` shows that
    the detector sees them.
    """
    monkeypatch.setattr(adaptive_cutmix, 'on_host', lambda tensor: False)


# --------------------------------------------------------------------- tests
def test_ael_step_is_sync_free(model_cfg, monkeypatch, accelerator_path):
    model = build_model(model_cfg)
    inputs, samples = make_batch()
    detector = SyncDetector([AEL_MODELS_DIR]).install(monkeypatch)
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    monkeypatch.undo()
    # Every AEL part ran.
    assert {'sup.decode.loss_ce', 'unsup.loss_ael', 'unsup.loss_ael_labeled'} <= set(losses)
    assert model.step_record is not None
    assert model.step_record.presence_indices is not None
    # The detector was live during the step: mmseg's accuracy (boolean-mask
    # indexing) synced, from an allowed file.
    assert any(osp.sep + 'mmseg' + osp.sep in f for _, f in detector.allowed), detector.allowed
    assert not any(f.startswith(AEL_MODELS_DIR) for _, f in detector.allowed)


def test_host_only_value_checks_are_seen(model_cfg, monkeypatch):
    # Without the accelerator path, AdaptiveCutMix validates values on the
    # CPU (`bool(bad.any())`); that is a sync, and the detector names it.
    model = build_model(model_cfg)
    inputs, samples = make_batch()
    SyncDetector([AEL_MODELS_DIR]).install(monkeypatch)
    with pytest.raises(HostSyncError, match=r'Tensor.__bool__.*adaptive_cutmix\.py'):
        model.loss(inputs, samples)


# A sync planted in the step, in code the interpreter files under ael_mmseg/models/.
PLANTED = {
    'item': 'counts.sum().item()',
    'if tensor': 'counts.sum() > 0 and None',
    'mask index': 'sums[counts > 0]',
}


@pytest.mark.parametrize('name', sorted(PLANTED))
def test_a_sync_planted_in_the_step_is_caught(name, model_cfg, monkeypatch, accelerator_path):
    model = build_model(model_cfg)
    bank = model.confidence_bank
    statistics = bank.batch_statistics
    source = (f'def batch_statistics(*args):\n    sums, counts = statistics_(*args)\n'
              f'    {PLANTED[name]}\n    return sums, counts\n')
    fake_file = osp.join(AEL_MODELS_DIR, 'utils', 'confidence_bank.py')
    namespace = dict(statistics_=statistics)
    exec(compile(source, fake_file, 'exec'), namespace)
    monkeypatch.setattr(bank, 'batch_statistics', namespace['batch_statistics'])
    SyncDetector([AEL_MODELS_DIR]).install(monkeypatch)
    with pytest.raises(HostSyncError, match=r'confidence_bank\.py:3 in batch_statistics\(\)'):
        model.loss(*make_batch())


# Negative controls: each wrapped operation, called from this (then watched) file.
_x = torch.arange(6.0)
_mask = _x > 2
SYNCING_CALLS = {
    'item': lambda: _x[0].item(),
    'cpu': lambda: _x.cpu(),
    'tolist': lambda: _x.tolist(),
    'numpy': lambda: _x.numpy(),
    'Tensor.nonzero': lambda: _x.nonzero(),
    'torch.nonzero': lambda: torch.nonzero(_x),
    'torch.unique': lambda: torch.unique(_x),
    'Tensor.unique': lambda: _x.unique(),
    'torch.multinomial': lambda: torch.multinomial(_x + 1, 1),
    'if tensor': lambda: 1 if _x.sum() else 0,
    'int': lambda: int(_x[1]),
    'float': lambda: float(_x[1]),
    'index': lambda: [0, 1, 2][_x.long()[1]],
    'mask index': lambda: _x[_mask],
    'mask assign': lambda: _x.clone().__setitem__(_mask, 0.0),
    'masked_select': lambda: _x.masked_select(_mask),
    'torch.where(cond)': lambda: torch.where(_mask),
    'bincount': lambda: torch.bincount(_x.long()),
    'equal': lambda: torch.equal(_x, _x),
    'f-string of a value': lambda: f'{_x.sum():.2f}',
}
SYNC_FREE_CALLS = {
    'torch.where(cond, a, b)': lambda: torch.where(_mask, _x, -_x),
    'masked_fill': lambda: _x.masked_fill(_mask, 0.0),
    'long index': lambda: _x[torch.tensor([0, 2])],
    'slice': lambda: _x[1:3],
    'gather': lambda: _x.gather(0, torch.tensor([1, 2])),
    'scatter_add': lambda: torch.zeros(3).scatter_add_(0, torch.tensor([0, 0]), _x[:2]),
    'searchsorted': lambda: torch.searchsorted(_x, torch.tensor([2.5])),
    'shape arithmetic': lambda: int(_x.shape[0]) * 2,
}


@pytest.mark.parametrize('name', sorted(SYNCING_CALLS))
def test_detector_catches_each_sync_from_a_watched_file(name, monkeypatch):
    call = SYNCING_CALLS[name]
    detector = SyncDetector([AEL_MODELS_DIR]).install(monkeypatch)
    call()  # this file is not watched: allowed, recorded
    assert detector.allowed
    detector.watched.append(THIS_FILE)
    with pytest.raises(HostSyncError, match='test_ael_sync_free.py'):
        call()


@pytest.mark.parametrize('name', sorted(SYNC_FREE_CALLS))
def test_detector_passes_sync_free_ops(name, monkeypatch):
    detector = SyncDetector([AEL_MODELS_DIR, THIS_FILE]).install(monkeypatch)
    SYNC_FREE_CALLS[name]()
    assert detector.allowed == []
