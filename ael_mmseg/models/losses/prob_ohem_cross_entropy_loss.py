"""Online hard example mining cross-entropy, as the original AEL's supervised loss."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ProbOhemCrossEntropyLoss(CrossEntropyLoss):
    """Cross-entropy over the hard pixels of a batch, averaged over those pixels.

    The supervised loss of the original AEL code (``ProbOhemCrossEntropy2d``
    with ``thresh=0.7, min_kept=100000``, on the main and the auxiliary head):
    a labeled pixel is kept when the probability the model gives its ground
    truth class is at most ``max(thresh, p_k)``, where ``p_k`` is the
    ``min_kept``-th smallest such probability in the batch, and the
    cross-entropy is **averaged over the kept pixels**.

    Why not MMSeg's ``OHEMPixelSampler`` + ``CrossEntropyLoss``: the sampler
    zeroes the weight of the easy pixels but the loss still divides by *all*
    pixels, so once the frequent classes are easy the gradient shrinks by the
    kept fraction instead of concentrating on the hard pixels; and its
    ``min_kept`` counts per image, the original's per batch. On long-tailed
    data the difference decides whether rare classes are learnt at all (the
    README's toy study). MMSeg's ``OhemCrossEntropy`` cannot be a decode
    head's ``loss_decode`` (it takes no ``weight``/``ignore_index``).

    Differences from the original, both deliberate: no host-device
    synchronisation (the threshold stays a tensor; the original branched on
    ``num_valid`` in Python, which gives the same selection), and a batch
    without labeled pixels gives a zero loss instead of NaN.

    A subclass of MMSeg's ``CrossEntropyLoss`` (softmax, no class weights), so
    ``tools/model_converters/export_teacher.py`` can write a plain MMSeg config
    with the stock loss in its place.

    Args:
        thresh (float): Probability at or below which a pixel is hard.
            Default: 0.7.
        min_kept (int): At least this many pixels of the batch are kept (all
            valid ones when there are fewer); 0 keeps exactly the pixels at or
            below ``thresh``. Default: 100000.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_ce'`` (the key MMSeg's heads log).
    """

    def __init__(self,
                 thresh: float = 0.7,
                 min_kept: int = 100000,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        if not 0.0 <= thresh <= 1.0:
            raise ValueError(f'ProbOhemCrossEntropyLoss: thresh must be in [0, 1], got {thresh}')
        if int(min_kept) != min_kept or min_kept < 0:
            raise ValueError('ProbOhemCrossEntropyLoss: min_kept must be a non-negative '
                             f'integer, got {min_kept}')
        if not loss_name.startswith('loss_'):
            raise ValueError(f"ProbOhemCrossEntropyLoss: loss_name must start with 'loss_' "
                             f'(mmengine only back-propagates those), got {loss_name!r}')
        super().__init__(loss_weight=loss_weight, loss_name=loss_name)
        self.thresh = float(thresh)
        self.min_kept = int(min_kept)

    @torch.no_grad()
    def kept_mask(self, cls_score: Tensor, label: Tensor, ignore_index: int = 255) -> Tensor:
        """(N, H, W) bool: the labeled pixels the loss is taken over."""
        valid = label != ignore_index
        target = label.masked_fill(~valid, 0)
        prob = F.softmax(cls_score.detach().float(), dim=1)
        return self._select(prob.gather(1, target.unsqueeze(1)).squeeze(1), valid)

    @torch.no_grad()
    def _select(self, target_prob: Tensor, valid: Tensor) -> Tensor:
        prob = target_prob.masked_fill(~valid, 1.0)
        threshold = prob.new_tensor(self.thresh)
        if self.min_kept > 0:
            # Ignored pixels sit at 1.0, so with fewer valid pixels than
            # min_kept the k-th value is 1.0 and every valid pixel is kept.
            flat = prob.flatten()
            kth = flat.kthvalue(min(self.min_kept, flat.numel())).values
            threshold = torch.maximum(threshold, kth)
        # `not >` rather than `<=`: a NaN probability keeps its pixel, so a
        # non-finite model output gives a non-finite loss instead of none.
        return valid & ~(prob > threshold)

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Loss of (N, C, H, W) logits against (N, H, W) labels."""
        if weight is not None:
            raise ValueError('ProbOhemCrossEntropyLoss selects its own pixels: remove the '
                             "decode head's `sampler` (e.g. OHEMPixelSampler)")
        if cls_score.shape[-2:] != label.shape[-2:]:
            raise ValueError(f'ProbOhemCrossEntropyLoss: logits {tuple(cls_score.shape)} and '
                             f'labels {tuple(label.shape)} differ in size')
        valid = label != ignore_index
        target = label.masked_fill(~valid, 0)
        # One log-softmax serves both the selection and the loss.
        pixel_loss = -F.log_softmax(cls_score.float(), dim=1).gather(
            1, target.unsqueeze(1)).squeeze(1)
        kept = self._select(pixel_loss.detach().neg().exp(), valid)
        kept_loss = torch.where(kept, pixel_loss, pixel_loss.new_zeros(()))
        return self.loss_weight * kept_loss.sum() / kept.sum().clamp(min=1).to(kept_loss.dtype)
