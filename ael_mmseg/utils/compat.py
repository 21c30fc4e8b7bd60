"""Loading mmengine 0.10.7 checkpoints with torch's weights-only unpickler.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7
calls ``torch.load`` without the argument, and its checkpoints hold objects
outside torch's allow-list, so ``--resume`` and ``load_from`` fail with an
``UnpicklingError``. What those checkpoints hold beyond tensors and built-in
containers is the message hub's ``HistoryBuffer`` of logged scalars:

* the ``HistoryBuffer`` itself (``NEWOBJ`` + ``BUILD``); its ``__getstate__``
  adds the class-level statistics methods, which pickle protocol 2 writes as
  ``getattr(HistoryBuffer, 'min')`` (``'max'``, ``'current'``, ``'mean'``);
* numpy arrays (``_reconstruct(ndarray, (0,), b'b')`` + ``BUILD``) and numpy
  scalars (``scalar(dtype, bytes)``, e.g. a best score) with their dtypes
  (``dtype('f8', False, True)`` + ``BUILD``).

:func:`mmengine_checkpoint_globals` allows exactly these, each through a
restricted stand-in registered under the name the pickle uses:

* ``builtins.getattr`` is a function that returns only
  ``HistoryBuffer.<one of the four statistics>`` and refuses every other
  object or attribute (the real ``getattr`` would reach any callable through
  ``torch._tensor._rebuild_from_type_v2``, which calls what it is given);
* ``HistoryBuffer`` is a subclass whose ``__setstate__`` checks the state's
  keys and types and refuses statistics that are not the class's own, so a
  load cannot change the class-level statistics of the process (the stock
  ``__setstate__`` would install whatever the file names); the instance is
  then turned into a plain ``HistoryBuffer``;
* ``_reconstruct`` accepts only the empty array numpy's own pickles start
  from (the data comes with ``BUILD``, which numpy checks against the shape),
  so a file cannot make it allocate; ``scalar`` only a numeric dtype and
  bytes of its item size; ``numpy.dtype`` only the numeric and bool names.
  ``ndarray`` itself is registered under a name no ``GLOBAL`` opcode can
  spell (it holds a newline), so that arrays made by ``_reconstruct`` may be
  built but the class cannot be called to allocate one.

The scope is mmengine's local checkpoint loader (what ``--resume``,
``load_from`` and ``mmengine.runner.load_checkpoint`` use), re-registered
here to load inside ``torch.serialization.safe_globals``, and the plugin's
own :func:`load_checkpoint_file`; a plain ``torch.load`` anywhere else keeps
torch's stock allow-list. Nothing changes on torch without
``torch.serialization.safe_globals`` (before 2.5): there torch's default
(``weights_only=False`` before 2.6) unpickles everything, so only checkpoints
from a trusted source may be loaded at all.
"""
import pickle
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, List, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
HISTORY_BUFFER_KEYS = {'max_length', '_log_history', '_count_history'}
# numpy's pickled names of the dtypes a HistoryBuffer or a logged scalar can hold.
DTYPE_NAMES = ('f8', 'f4', 'f2', 'i8', 'i4', 'i2', 'i1', 'u8', 'u4', 'u2', 'u1', 'b1')
_DTYPE_CLASSES = tuple(type(np.dtype(name)) for name in DTYPE_NAMES)
# numpy 2 pickles its reconstructors from numpy._core, numpy 1 from numpy.core.
_NUMPY_CORE_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar

SCOPED_LOADING = hasattr(torch.serialization, 'safe_globals')


def _refuse(what: str) -> None:
    raise pickle.UnpicklingError(
        f'{what} is not allowed: ael_mmseg allows only the objects mmengine checkpoints '
        'hold (HistoryBuffer, its statistics methods, numeric numpy arrays and scalars)')


def checkpoint_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s four statistics methods."""
    if not (isinstance(obj, type) and issubclass(obj, HistoryBuffer)
            and name in HISTORY_BUFFER_STATISTICS):
        _refuse(f'getattr({obj!r}, {name!r})')
    return getattr(HistoryBuffer, name)


class CheckpointHistoryBuffer(HistoryBuffer):
    """Stand-in for ``HistoryBuffer`` while a checkpoint is unpickled."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            _refuse(f'a HistoryBuffer state of type {type(state).__name__}')
        if not HISTORY_BUFFER_KEYS <= set(state) <= HISTORY_BUFFER_KEYS | {'statistics_methods'}:
            _refuse(f'a HistoryBuffer state with keys {sorted(map(str, state))}')
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict) or any(
                name not in HISTORY_BUFFER_STATISTICS or method is not getattr(HistoryBuffer, name)
                for name, method in methods.items()):
            _refuse('a HistoryBuffer state that replaces its class-level statistics methods')
        if not (type(state['max_length']) is int
                and all(type(state[key]) is np.ndarray and state[key].ndim == 1
                        for key in ('_log_history', '_count_history'))):
            _refuse('a HistoryBuffer state whose length or histories are not an int and '
                    '1-D arrays')
        self.__class__ = HistoryBuffer
        self._set_default_statistics()  # what the stock __setstate__ does first
        self.__dict__.update({key: state[key] for key in HISTORY_BUFFER_KEYS})


def checkpoint_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` restricted to what numpy's pickles call it with."""
    if subtype is not _NDARRAY_NAME or shape != (0,) or dtype != b'b':
        _refuse(f'_reconstruct({subtype!r}, {shape!r}, {dtype!r})')
    return _reconstruct(np.ndarray, (0,), b'b')


def checkpoint_scalar(dtype: Any, data: Any) -> Any:
    """numpy's ``scalar`` restricted to numeric dtypes and bytes of their item size."""
    if not (type(dtype) in _DTYPE_CLASSES and type(data) is bytes
            and len(data) == dtype.itemsize):
        _refuse(f'scalar({dtype!r}, {type(data).__name__} of length '
                f'{len(data) if hasattr(data, "__len__") else "?"})')
    return scalar(dtype, data)


def checkpoint_dtype(name: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """``numpy.dtype`` restricted to the numeric and bool dtype names."""
    if name not in DTYPE_NAMES or type(align) is not bool or type(copy) is not bool:
        _refuse(f'numpy.dtype({name!r}, {align!r}, {copy!r})')
    return np.dtype(name, align, copy)


class _NdarrayName:
    """What ``GLOBAL numpy ndarray`` resolves to: a marker, not callable."""

    def __init__(self, *args, **kwargs) -> None:
        _refuse('calling numpy.ndarray')


_NDARRAY_NAME = _NdarrayName


def _safe_globals() -> List[Tuple[Any, str]]:
    entries = [(checkpoint_getattr, 'builtins.getattr'),
               (CheckpointHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
               (_NdarrayName, 'numpy.ndarray'),
               # BUILD of an array requires its class among the allowed values.
               (np.ndarray, 'numpy.ndarray\n(only as built by _reconstruct)'),
               (checkpoint_dtype, 'numpy.dtype')]
    entries += [(cls, f'{cls.__module__}.{cls.__qualname__}') for cls in _DTYPE_CLASSES]
    for module in _NUMPY_CORE_MODULES:
        entries += [(checkpoint_reconstruct, f'{module}._reconstruct'),
                    (checkpoint_scalar, f'{module}.scalar')]
    return entries


@contextmanager
def mmengine_checkpoint_globals() -> Iterator[None]:
    """Inside: torch's weights-only unpickler also loads mmengine's checkpoint objects.

    A no-op on torch without ``torch.serialization.safe_globals`` (< 2.5).
    """
    if not SCOPED_LOADING:
        yield
        return
    with torch.serialization.safe_globals(_safe_globals()):
        yield


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """Load an mmengine checkpoint file as safely as the installed torch allows.

    With ``torch.serialization.safe_globals`` (torch >= 2.5): weights-only,
    with :func:`mmengine_checkpoint_globals`. Before: torch cannot allow-list
    mmengine's ``HistoryBuffer``, so the file is fully unpickled (torch's own
    default there), with a warning that says so.
    """
    if SCOPED_LOADING:
        with mmengine_checkpoint_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    warnings.warn(f'torch {torch.__version__} cannot load mmengine checkpoints weights-only '
                  f'(no torch.serialization.safe_globals); {path!r} is fully unpickled, '
                  'which runs any code it holds: load only checkpoints you trust',
                  stacklevel=2)
    return torch.load(path, map_location=map_location)


_stock_load_from_local = CheckpointLoader._schemes['']


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local checkpoint loader, inside :func:`mmengine_checkpoint_globals`."""
    with mmengine_checkpoint_globals():
        return _stock_load_from_local(filename, map_location)


if SCOPED_LOADING:
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
