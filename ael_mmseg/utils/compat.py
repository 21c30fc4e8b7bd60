"""Narrow fixes for the pinned stack (torch >= 2.6 with mmengine 0.10.7).

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7
calls ``torch.load`` without the argument, and its checkpoints hold a few of
its own objects (the message hub's ``HistoryBuffer`` of logged scalars, which
keeps numpy arrays and pickles its class-level statistics methods as
``getattr(HistoryBuffer, 'min')``), so ``--resume`` and ``load_from`` fail
with an ``UnpicklingError``. Rather than turning the safe loader off, we add
exactly those globals to torch's allow-list: ``HistoryBuffer``, the numpy
array / scalar / dtype reconstructors and ``getattr``. The weights-only
unpickler still calls only allow-listed callables, so an attribute fetched
with ``getattr`` cannot be called; every other object is still refused.
The fix is a no-op on torch < 2.6 and can go once mmengine releases its own
(it is on mmengine's main branch).
"""
import torch


def _safe_checkpoint_globals() -> list:
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(name)) for name in
              ('float64', 'float32', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool')]
    return [HistoryBuffer, getattr, _reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


def allow_mmengine_checkpoints() -> None:
    """Allow mmengine's own checkpoint objects in ``torch.load(weights_only=True)``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(_safe_checkpoint_globals())


allow_mmengine_checkpoints()
