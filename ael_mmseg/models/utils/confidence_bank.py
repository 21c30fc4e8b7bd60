"""The confidence bank of AEL (paper Sec. 3.2, Eq. 4 and Eq. 7)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConfidenceBank(nn.Module):
    """Per-class running confidence of the student on labeled pixels.

    For every class ``c`` the step statistic is the mean, over the labeled
    pixels whose ground truth is ``c``, of the student's softmax probability
    for ``c`` (Eq. 4); the bank follows it with an exponential moving average
    ``Conf_c <- tau * Conf_c + (1 - tau) * Conf_c^step`` (Eq. 7).

    Where we differ from the original code, and why:

    * **Absent classes keep their value.** The original fed 0 for a class
      absent from the batch, so a rare class looked "bad" merely for being
      rare, and its confidence depended on the batch size and the number of
      GPUs. Here a class is updated only on steps where it has labeled
      pixels (``counts > 0``).
    * **Initialisation.** The original started from uniform random values.
      We keep the raw average ``ema`` and the number of updates per class and
      report the bias-corrected average ``ema / (1 - tau ** n_c)`` (as Adam
      does), so the bank equals the observed statistic after the first
      update and tends to the plain Eq. 7 average once ``tau ** n_c`` is
      negligible (about 5000 updates at ``tau = 0.999``). A class never
      observed has confidence ``init_confidence`` (0 by default: an unseen
      class is treated as the least learnt one).
    * **Multi-GPU.** The original kept one bank per process. The step sums
      and counts are all-reduced (:meth:`AELSegmentor.finish_step`, called by
      :class:`AELHook`) before :meth:`update`, so every rank holds
      the same bank, independent of how the global batch is split.

    The sampling distributions the bank drives (ACM, ACP, AES) are in
    :mod:`ael_mmseg.models.utils.class_sampling`.

    Args:
        num_classes (int): Number of classes.
        momentum (float): ``tau`` of Eq. 7, in [0, 1). The paper uses 0.999;
            short schedules need a smaller value (see the demo configs).
        init_confidence (float): Confidence reported for a class that has
            never been observed, in [0, 1].
    """

    def __init__(self,
                 num_classes: int,
                 momentum: float = 0.999,
                 init_confidence: float = 0.0) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'ConfidenceBank: num_classes must be a positive int, '
                             f'got {num_classes!r}')
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'ConfidenceBank: momentum (tau of Eq. 7) must be in '
                             f'[0, 1), got {momentum!r}')
        if not 0.0 <= init_confidence <= 1.0:
            raise ValueError(f'ConfidenceBank: init_confidence must be in [0, 1], '
                             f'got {init_confidence!r}')
        self.num_classes = num_classes
        self.momentum = float(momentum)
        self.init_confidence = float(init_confidence)
        self.register_buffer('ema', torch.zeros(num_classes, dtype=torch.float32))
        self.register_buffer('num_updates', torch.zeros(num_classes, dtype=torch.float32))

    @property
    def confidence(self) -> Tensor:
        """Tensor: (C,) float32 bias-corrected confidence ``Conf`` of Eq. 7."""
        correction = 1.0 - torch.pow(self.momentum, self.num_updates)
        corrected = self.ema / correction.clamp_min(torch.finfo(torch.float32).tiny)
        return torch.where(self.num_updates > 0, corrected,
                           torch.full_like(self.ema, self.init_confidence))

    def batch_statistics(self, seg_logits: Tensor, gt_seg: Tensor,
                         ignore_index: int = 255) -> Tuple[Tensor, Tensor]:
        """Per-class sums of the true-class probability and pixel counts (Eq. 4).

        Args:
            seg_logits (Tensor): (N, C, H, W) student logits on labeled images,
                already resized to the label size.
            gt_seg (Tensor): (N, H, W) ground truth, ``ignore_index`` allowed.
            ignore_index (int): Label value that is not a class.

        Returns:
            tuple[Tensor, Tensor]: (C,) float32 sums of ``p_c`` over pixels of
            class ``c`` and (C,) float32 pixel counts. ``sums / counts`` is
            the step confidence of Eq. 4.
        """
        if seg_logits.dim() != 4 or seg_logits.shape[1] != self.num_classes:
            raise ValueError(f'ConfidenceBank: expected logits (N, {self.num_classes}, H, W), '
                             f'got {tuple(seg_logits.shape)}')
        if gt_seg.shape != (seg_logits.shape[0], *seg_logits.shape[2:]):
            raise ValueError(f'ConfidenceBank: label shape {tuple(gt_seg.shape)} does not '
                             f'match logits {tuple(seg_logits.shape)}')
        probs = F.softmax(seg_logits.detach().float(), dim=1)
        valid = (gt_seg != ignore_index) & (gt_seg >= 0) & (gt_seg < self.num_classes)
        target = torch.where(valid, gt_seg, torch.zeros_like(gt_seg)).long()
        true_prob = probs.gather(1, target.unsqueeze(1)).squeeze(1) * valid
        flat_target = target.flatten()
        sums = torch.zeros(self.num_classes, dtype=torch.float32, device=probs.device)
        counts = torch.zeros_like(sums)
        sums.scatter_add_(0, flat_target, true_prob.flatten())
        counts.scatter_add_(0, flat_target, valid.flatten().float())
        return sums, counts

    @torch.no_grad()
    def update(self, sums: Tensor, counts: Tensor) -> None:
        """Apply Eq. 7 to the classes observed in this step.

        Args:
            sums (Tensor): (C,) summed true-class probabilities (all ranks).
            counts (Tensor): (C,) pixel counts (all ranks).
        """
        observed = counts > 0
        step_conf = sums / counts.clamp_min(1.0)
        updated = self.momentum * self.ema + (1.0 - self.momentum) * step_conf
        self.ema.copy_(torch.where(observed, updated, self.ema))
        self.num_updates.add_(observed.float())

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, momentum={self.momentum}, '
                f'init_confidence={self.init_confidence}')
