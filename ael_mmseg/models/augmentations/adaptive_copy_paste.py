"""Adaptive Copy-Paste (ACP) on labeled batches (AEL, NeurIPS 2021, Sec. 3.3).

ACP pastes *all* pixels of a few sampled classes from a second labeled image
(the paste source, with its own large-scale jitter) onto each labeled image,
image and label alike. Classes are sampled with probability
``softmax(sqrt(1 - Conf))`` over the allowed classes
(:func:`~ael_mmseg.models.utils.class_sampling.acp_class_probabilities`), so classes the model is
currently bad at (low confidence in the bank, Eq. 4/7) are pasted more often.

Where and why we differ from the original code (``dynamic_copy_paste`` and
``train.py`` of hzhupku/SemiSeg-AEL):

* Excluded classes are a per-dataset setting (``excluded_classes``). The
  original hard-coded the Cityscapes "stuff" classes ``[0, 1, 2, 8, 10]``
  (road, sidewalk, building, vegetation, sky) and, by mistake, applied the
  same ids to VOC (background, aeroplane, bicycle, cat, cow there).
* Classes are sampled per image; the original drew one class set per batch
  (per process), so every image of a step pasted the same classes.
* The paste probability ``prob`` is a Bernoulli draw per image, on the
  device, inside :meth:`AdaptiveCopyPaste.forward`. In the original it lived
  in the dataset: with probability 0.5 a paste image was loaded, otherwise an
  all-zero label was returned and ``dynamic_copy_paste`` skipped the image.
  Here the caller always provides a paste source; memory is the same and the
  pipeline stays static.
* Everything is vectorised and free of host-device synchronisation: class
  sampling by inverse CDF on ``torch.rand``, the per-pixel class lookup by
  ``gather`` (the original looped over images and classes).

Kept from the original: ``K`` draws *with replacement*, then the set of drawn
classes is pasted (1 to ``K`` distinct classes per image); ignore pixels of
the paste label are never pasted (``255`` was never a sampled class there).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.class_sampling import acp_class_probabilities


@MODELS.register_module()
class AdaptiveCopyPaste(nn.Module):
    """Adaptive Copy-Paste batch augmentation for labeled images.

    Args:
        num_classes (int): Number of semantic classes ``C``.
        num_sampled_classes (int): ``K``, class draws (with replacement) per
            image. The paper uses 3 on Cityscapes and 1 on VOC. Must be at
            least 1 and at most the number of allowed classes.
        prob (float): Probability that an image receives a paste at all.
            Default 0.5 as in the original.
        excluded_classes (Sequence[int]): Class ids that are never sampled
            (e.g. Cityscapes stuff classes ``(0, 1, 2, 8, 10)``; for VOC
            typically ``()`` or ``(0,)`` for background). Default ``()``.
        ignore_index (int): Label value of ignored pixels; such pixels of the
            paste label are never pasted. Default 255.
    """

    def __init__(self,
                 num_classes: int,
                 num_sampled_classes: int = 3,
                 prob: float = 0.5,
                 excluded_classes: Sequence[int] = (),
                 ignore_index: int = 255) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
                or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        excluded = sorted(set(excluded_classes))
        for cls_id in excluded:
            if isinstance(cls_id, bool) or not isinstance(cls_id, int) \
                    or not 0 <= cls_id < num_classes:
                raise ValueError(f'excluded_classes contains {cls_id!r}, which is not a class '
                                 f'id in [0, {num_classes})')
        num_allowed = num_classes - len(excluded)
        if isinstance(num_sampled_classes, bool) or not isinstance(num_sampled_classes, int) \
                or not 1 <= num_sampled_classes <= num_allowed:
            raise ValueError(f'num_sampled_classes (K={num_sampled_classes!r}) must be an int in '
                             f'[1, {num_allowed}] (the number of allowed classes: '
                             f'{num_classes} classes minus {len(excluded)} excluded)')
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be a number in [0, 1], got {prob!r}')
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f'ignore_index must be an int, got {ignore_index!r}')
        self.num_classes = num_classes
        self.num_sampled_classes = num_sampled_classes
        self.prob = float(prob)
        self.excluded_classes = tuple(excluded)
        self.ignore_index = ignore_index
        allowed = torch.ones(num_classes, dtype=torch.bool)
        allowed[list(excluded)] = False
        # Not persistent: derived from the config, so checkpoints stay free of it.
        self.register_buffer('allowed_mask', allowed, persistent=False)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, num_sampled_classes={self.num_sampled_classes}, '
                f'prob={self.prob}, excluded_classes={self.excluded_classes}, '
                f'ignore_index={self.ignore_index}')

    def _check_confidence(self, confidence: Tensor) -> None:
        if not isinstance(confidence, Tensor) or confidence.shape != (self.num_classes, ) \
                or not confidence.is_floating_point():
            shape = tuple(confidence.shape) if isinstance(confidence, Tensor) else None
            raise ValueError(f'confidence must be a float tensor of shape ({self.num_classes},), '
                             f'got {type(confidence).__name__} with shape {shape}')

    def sample_classes(self,
                       confidence: Tensor,
                       num_images: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
        """Sample the set of classes to paste, independently per image.

        Each image gets ``K`` draws with replacement from
        :func:`acp_class_probabilities` over the allowed classes (inverse CDF
        on ``torch.rand``); its set is the union of the draws (1 to ``K``
        distinct classes).

        Args:
            confidence (Tensor): (C,) per-class confidence bank.
            num_images (int): Number of images ``N``.
            generator (torch.Generator, optional): RNG on ``confidence.device``.

        Returns:
            Tensor: (N, C) bool, True where class c is pasted onto image n.
        """
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 0:
            raise ValueError(f'num_images must be a non-negative int, got {num_images!r}')
        self._check_confidence(confidence)
        probs = acp_class_probabilities(confidence, self.allowed_mask.to(confidence.device))
        cdf = torch.cumsum(probs, dim=0)
        u = torch.rand((num_images, self.num_sampled_classes),
                       device=probs.device, generator=generator)
        # Scaling by cdf[-1] keeps u * total < total, so rounding in the
        # cumulative sum can never select past the last allowed class; a
        # zero-probability class has cdf[c] == cdf[c - 1] and is never hit.
        draws = torch.searchsorted(cdf, (u * cdf[-1]).contiguous(), right=True)
        draws = draws.clamp(max=self.num_classes - 1)
        chosen = torch.zeros((num_images, self.num_classes), dtype=torch.bool,
                             device=probs.device)
        return chosen.scatter_(1, draws, True)

    def forward(self,
                images: Tensor,
                labels: Tensor,
                paste_images: Tensor,
                paste_labels: Tensor,
                confidence: Tensor,
                generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Paste the sampled classes of ``paste_*`` onto ``images``/``labels``.

        Randomness, in this order on ``images.device``: the class draws of
        :meth:`sample_classes`, then ``torch.rand(N) < prob`` for whether an
        image is pasted at all.

        Args:
            images (Tensor): (N, 3, H, W) float, labeled images.
            labels (Tensor): (N, H, W) integer, their labels.
            paste_images (Tensor): (N, 3, H, W) float, paste source per image.
            paste_labels (Tensor): (N, H, W) integer, labels of the sources.
            confidence (Tensor): (C,) per-class confidence bank.
            generator (torch.Generator, optional): RNG on ``images.device``.

        Returns:
            tuple[Tensor, Tensor, Tensor]: new images (N, 3, H, W), new
            labels (N, H, W) and ``paste_mask`` (N, H, W) bool, True where a
            pixel (image and label) was taken from the paste source.
        """
        self._check_inputs(images, labels, paste_images, paste_labels)
        self._check_confidence(confidence)
        num_images = images.shape[0]
        device = images.device
        chosen = self.sample_classes(confidence.to(device), num_images, generator)
        do_paste = torch.rand(num_images, device=device, generator=generator) < self.prob
        # Lookup table with one extra always-False column for ignore / out-of-range labels.
        table = torch.cat([chosen, chosen.new_zeros((num_images, 1))], dim=1)
        in_range = (paste_labels >= 0) & (paste_labels < self.num_classes)
        index = paste_labels.long().masked_fill(~in_range, self.num_classes)
        paste_mask = torch.gather(table, 1, index.flatten(1)).view_as(paste_labels)
        paste_mask = paste_mask & do_paste.view(-1, 1, 1)
        out_images = torch.where(paste_mask.unsqueeze(1), paste_images, images)
        out_labels = torch.where(paste_mask, paste_labels.to(labels.dtype), labels)
        return out_images, out_labels, paste_mask

    @staticmethod
    def _check_inputs(images: Tensor, labels: Tensor, paste_images: Tensor,
                      paste_labels: Tensor) -> None:
        named = dict(images=images, labels=labels, paste_images=paste_images,
                     paste_labels=paste_labels)
        for name, value in named.items():
            if not isinstance(value, Tensor):
                raise ValueError(f'{name} must be a Tensor, got {type(value).__name__}')
        if images.dim() != 4:
            raise ValueError(f'images must be (N, C, H, W), got shape {tuple(images.shape)}')
        if paste_images.shape != images.shape:
            raise ValueError(f'paste_images shape {tuple(paste_images.shape)} differs from '
                             f'images shape {tuple(images.shape)}')
        n, _, h, w = images.shape
        for name in ('labels', 'paste_labels'):
            value = named[name]
            if value.shape != (n, h, w):
                raise ValueError(f'{name} must have shape (N, H, W) = {(n, h, w)} to match '
                                 f'images, got {tuple(value.shape)}')
            if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
                raise ValueError(f'{name} must be an integer tensor, got {value.dtype}')
        for name, value in named.items():
            if value.device != images.device:
                raise ValueError(f'{name} is on {value.device} but images on {images.device}')
