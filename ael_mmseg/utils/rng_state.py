"""Capture and restore the torch random state that drives AEL's in-model sampling.

AES keeps pixels with ``torch.rand``, ACP draws classes and paste decisions
with ``torch.rand``, and CutMix draws fallback boxes with it, all from torch's
default generators (CPU, and the current CUDA device's when training on a
GPU). mmengine re-seeds those at start-up but does not checkpoint them, so a
resumed run would draw different samples from the first step on.
"""
from typing import Any, Dict

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
