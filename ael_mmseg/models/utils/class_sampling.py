"""The per-class sampling distributions the confidence bank drives, one function each.

Training uses these functions and :class:`AELHook` logs their
values, so what is logged is what trains:

* :func:`acm_class_probabilities` -- ACM's category sampling (Eq. 9),
  used by :meth:`ACMSourceState.sample_source` (the data side);
* :func:`acp_class_probabilities` -- ACP's category sampling, used by
  :meth:`AdaptiveCopyPaste.sample_classes`;
* :func:`aes_sampling_rates` -- AES's per-class keep rates (Eq. 10-11),
  used by :class:`AELSegmentor` for :class:`AELWeightedCELoss`.

``confidence`` is the (C,) bank ``Conf`` of Eq. 7
(:attr:`ConfidenceBank.confidence`), in [0, 1].
"""
import math
from typing import Optional

import torch
from torch import Tensor


def _check_confidence(confidence: Tensor, num_classes: Optional[int] = None) -> None:
    if not isinstance(confidence, Tensor) or confidence.dim() != 1 or \
            confidence.numel() == 0 or not confidence.is_floating_point():
        shape = tuple(confidence.shape) if isinstance(confidence, Tensor) else None
        dtype = confidence.dtype if isinstance(confidence, Tensor) else type(confidence).__name__
        raise ValueError('confidence must be a non-empty (C,) floating tensor, got shape '
                         f'{shape}, dtype {dtype}')
    if num_classes is not None and confidence.numel() != num_classes:
        raise ValueError(f'confidence must have shape ({num_classes},) (one entry per class), '
                         f'got {tuple(confidence.shape)}')


def acm_class_probabilities(confidence: Tensor, num_classes: Optional[int] = None) -> Tensor:
    """ACM category sampling ``r = softmax(1 - Conf)`` (paper Sec. 3.3, Eq. 9).

    Args:
        confidence (Tensor): (C,) confidence bank.
        num_classes (int, optional): Expected C, checked when given.

    Returns:
        Tensor: (C,) float32 probabilities on ``confidence.device``.
    """
    _check_confidence(confidence, num_classes)
    return torch.softmax(1.0 - confidence.detach().float(), dim=0)


def acp_class_probabilities(confidence: Tensor, allowed: Optional[Tensor] = None) -> Tensor:
    """ACP category sampling ``softmax(sqrt(1 - Conf))`` over the allowed classes.

    As ``train.py`` of the original code. ``1 - Conf`` is clamped at 0 so a
    bank value marginally above 1 cannot give NaN; excluded classes get
    probability exactly 0.

    Args:
        confidence (Tensor): (C,) confidence bank.
        allowed (Tensor, optional): (C,) bool, the classes that may be pasted.

    Returns:
        Tensor: (C,) float32 probabilities on ``confidence.device``, summing to 1.
    """
    _check_confidence(confidence)
    logits = (1.0 - confidence.detach().float()).clamp(min=0.0).sqrt()
    if allowed is not None:
        if tuple(allowed.shape) != tuple(confidence.shape) or allowed.dtype != torch.bool:
            raise ValueError(f'allowed must be a {tuple(confidence.shape)} bool tensor, got '
                             f'shape {tuple(allowed.shape)}, dtype {allowed.dtype}')
        logits = logits.masked_fill(~allowed.to(logits.device), float('-inf'))
    return torch.softmax(logits, dim=0)


def aes_sampling_rates(confidence: Tensor, beta: float = 1.0) -> Tensor:
    """AES keep rates ``s_c = ((1 - Conf_c) / max_k (1 - Conf_k)) ** beta`` (Eq. 10-11).

    The least confident class gets rate 1. When every class is fully
    confident (``max_k (1 - Conf_k) == 0``) nothing is preferred and all
    rates are 1 (the original divided by ``max + 1e-12`` and so dropped every
    pixel then). Sync-free.

    Args:
        confidence (Tensor): (C,) confidence bank.
        beta (float): Exponent, finite and >= 0 (0 gives all rates 1).

    Returns:
        Tensor: (C,) float32 keep rates in [0, 1] on ``confidence.device``.
    """
    _check_confidence(confidence)
    beta = float(beta)
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f'beta must be a finite number >= 0, got {beta}')
    unconfidence = (1.0 - confidence.detach().float()).clamp_min(0.0)
    largest = unconfidence.max()
    ratio = unconfidence / largest.clamp_min(torch.finfo(torch.float32).tiny)
    ratio = torch.where(largest > 0, ratio, torch.ones_like(ratio))
    return ratio.pow(beta)
