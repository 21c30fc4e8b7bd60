"""Capture and restore the torch random state that drives AEL's in-model sampling.

AES keeps pixels with ``torch.rand``, ACP draws classes and paste decisions
with ``torch.rand``, and CutMix draws fallback boxes with it, all from torch's
default generators (CPU, and the current CUDA device's when training on a
GPU). mmengine re-seeds those at start-up but does not checkpoint them, so a
resumed run would draw different samples from the first step on.

The data pipelines' augmentations draw from numpy's and Python's global
generators instead (:func:`get_data_rng_state`). mmengine's stock resume
restores those by loading every trained batch again; a resume that skips the
loading restores them from the checkpoint.
"""
import random
from typing import Any, Dict

import numpy as np
import torch


def get_torch_rng_state() -> Dict[str, Any]:
    """The default CPU generator's state and, if CUDA is in use, the current device's."""
    state: Dict[str, Any] = dict(cpu=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # Host-side generator state (seed and offset): no device synchronisation.
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_torch_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state from :func:`get_torch_rng_state`.

    Raises:
        ValueError: If ``state`` lacks the CPU state.
    """
    if not isinstance(state, dict) or 'cpu' not in state:
        raise ValueError(f'not a torch RNG state (a dict with key "cpu"): {type(state).__name__}')
    torch.set_rng_state(state['cpu'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


def get_data_rng_state() -> Dict[str, Any]:
    """The host random state that data pipelines draw from: numpy's and Python's.

    MMCV/MMSeg transforms (random resize, crop, flip, photometric distortion)
    draw from the global ``numpy.random`` and ``random`` generators of the
    process that loads the data. The numpy key array is kept as a torch
    tensor so that the state loads with ``torch.load(weights_only=True)``.

    Returns:
        dict: ``numpy`` (the ``numpy.random.get_state()`` tuple, keys as an
        int64 tensor) and ``python`` (``random.getstate()``).
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return dict(numpy=(name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                       int(has_gauss), float(cached_gaussian)),
                python=random.getstate())


def set_data_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state from :func:`get_data_rng_state`.

    Raises:
        ValueError: If ``state`` lacks the numpy or the Python state.
    """
    if not isinstance(state, dict) or 'numpy' not in state or 'python' not in state:
        raise ValueError('not a data RNG state (a dict with keys "numpy" and "python"): '
                         f'{type(state).__name__}')
    name, keys, pos, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
