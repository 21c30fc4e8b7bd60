"""Adaptive CutMix (ACM) of AEL, Eq. 9 of the paper.

Hu et al., "Semi-Supervised Semantic Segmentation via Adaptive Equalization
Learning", NeurIPS 2021. ACM pastes a region of a *source* unlabeled image that
contains an under-performing class onto a *target* unlabeled image, and mixes
the teacher's pseudo-labels and confidences with the same box:

* a class c is drawn with probability r = softmax(1 - Conf) (the paper's
  category sampling, Conf being the confidence bank, Eq. 7);
* the source is an unlabeled image whose entry in a class x image *presence*
  table is True for c (any image when none is);
* the box M of Eq. 9 is the bounding box of a connected component of c in the
  source's teacher prediction; the mixed input is
  ``x = (1 - M) * x_target + M * x_source``, and the same for the pseudo-label
  and its confidence.

The class and image are drawn on the host, on the data side
(``ael_mmseg.datasets.samplers.ACMSourceState``, from host copies of the bank
and of this module's presence table); this module computes the presence rows
and runs the box and the mixing in the training step
(:meth:`AdaptiveCutMix.forward`), without host-device syncs.
"""
import math
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .connected_components import connected_components
from .cutmix import CutMix, on_host

# Relative tolerance on ``thresh * num_pixels`` before it is rounded up to a whole
# pixel count, so that float rounding (0.07 * 100 = 7.000000000000001) cannot turn
# a class that covers exactly the threshold into an absent one.
_AREA_EPS = 1e-9


def _min_pixels(area_thresh: float, num_pixels: int) -> int:
    """Smallest whole pixel count whose fraction of ``num_pixels`` is >= ``area_thresh``.

    Args:
        area_thresh (float): Area threshold as a fraction of the image.
        num_pixels (int): Pixels in the image.

    Returns:
        int: ``ceil(area_thresh * num_pixels)`` up to float rounding, at least 1
        (an area of 0 never counts as present).
    """
    need = area_thresh * num_pixels
    return max(1, math.ceil(need - _AREA_EPS * max(need, 1.0)))


@MODELS.register_module()
class AdaptiveCutMix(CutMix):
    """Adaptive CutMix of AEL (Eq. 9) for a batch of target/source pairs.

    Holds the class x unlabeled-image presence table (the original code's
    ``cutmix_bank``) over the whole unlabeled set as the bool buffer
    ``presence`` of shape (num_classes, num_unlabeled), saved in checkpoints.
    Like the original's ``update_cutmix_bank``, the caller refreshes the
    columns of every unlabeled image the teacher predicted on (targets and
    sources) with :meth:`compute_presence` and :meth:`write_presence`. With
    several processes the table is only identical on every rank if every
    rank writes the same columns (all-gather the indices and rows first);
    DDP's ``broadcast_buffers`` would otherwise overwrite it with rank 0's.

    Differences from the original code (hzhupku/SemiSeg-AEL), all deliberate:

    * Batched: P target/source pairs per step instead of one pair per GPU.
    * Connected components of the sampled class are labelled on the device
      (:func:`connected_components`, fixed iteration count) on the source
      prediction downsampled by nearest to at most ``max_label_map_size`` on
      its longer side, and the box is scaled back to full resolution; the
      original ran ``skimage.measure.label`` on the host at full resolution.
      So the box is the bounding box of the component as seen at that
      resolution (exact when the image is no larger), and an extremely
      winding component may be split, which only shrinks the box.
    * Component areas are compared with ``>=`` (the original used ``>``) and
      as a fraction of ``H * W`` (the original used ``h ** 2``, square crops).
    * Area thresholds become whole pixel counts ``ceil(thresh * pixels)``
      with a tolerance for float rounding, so a class covering exactly the
      threshold is present (the original's float comparison said absent when
      e.g. ``0.07 * 100`` rounded to 7.000000000000001).
    * Only the released configuration is implemented: the original's box
      padding and slimming towards half the image (``no_pad``/``no_slim``
      False) are not; its released configs switch both off.
    * The original mixed the teacher's logits with the box and took argmax
      and max-softmax afterwards; mixing the argmax and the max-probability
      with the same box, as here, is pixelwise identical.

    Args:
        num_classes (int): Number of classes C.
        presence_area_thresh (float): A class is present in an image when its
            predicted pixel fraction is >= this (the original's
            ``area_thresh2``: Cityscapes 0.01). Defaults to 0.01.
        component_area_thresh (float): Connected components smaller than this
            fraction of the image are never chosen (the original's
            ``area_thresh``: Cityscapes 0.005, VOC 0.03). Defaults to 0.005.
        area_ratio (float): Area of the random CutMix box used when no class
            was sampled or no component qualifies (:class:`CutMix`). Defaults
            to 0.5.
        max_label_map_size (int): Longer side of the label map on which the
            components are found. Defaults to 128.
        ignore_index (int): Label value that is no class. Defaults to 255.
        connectivity (int): 8 (like the original's skimage default) or 4.
            Defaults to 8.
        num_cc_iterations (int, optional): Fixed iteration count of the
            component labelling; None picks
            :func:`~.connected_components.default_num_iterations`.
    """

    def __init__(self,
                 num_classes: int,
                 presence_area_thresh: float = 0.01,
                 component_area_thresh: float = 0.005,
                 area_ratio: float = 0.5,
                 max_label_map_size: int = 128,
                 ignore_index: int = 255,
                 connectivity: int = 8,
                 num_cc_iterations: Optional[int] = None) -> None:
        super().__init__(area_ratio)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        for name, value in (('presence_area_thresh', presence_area_thresh),
                            ('component_area_thresh', component_area_thresh)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if max_label_map_size < 1:
            raise ValueError(f'max_label_map_size must be >= 1, got {max_label_map_size}')
        if connectivity not in (4, 8):
            raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
        if num_cc_iterations is not None and num_cc_iterations < 0:
            raise ValueError(f'num_cc_iterations must be >= 0, got {num_cc_iterations}')
        if 0 <= ignore_index < num_classes:
            raise ValueError(f'ignore_index={ignore_index} is a class index '
                             f'(num_classes={num_classes})')
        self.num_classes = num_classes
        self.presence_area_thresh = presence_area_thresh
        self.component_area_thresh = component_area_thresh
        self.max_label_map_size = max_label_map_size
        self.ignore_index = ignore_index
        self.connectivity = connectivity
        self.num_cc_iterations = num_cc_iterations
        self.register_buffer('presence', torch.zeros(num_classes, 0, dtype=torch.bool))

    @property
    def num_unlabeled(self) -> int:
        """int: Number of unlabeled images the presence table covers."""
        return self.presence.shape[1]

    # ------------------------------------------------------------------ presence
    def resize_presence(self, num_unlabeled: int) -> None:
        """(Re)allocate the presence table for ``num_unlabeled`` images, all False.

        Args:
            num_unlabeled (int): Size of the whole unlabeled set.
        """
        if num_unlabeled < 0:
            raise ValueError(f'num_unlabeled must be >= 0, got {num_unlabeled}')
        self.presence = torch.zeros(
            self.num_classes, num_unlabeled, dtype=torch.bool, device=self.presence.device)

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str,
                              local_metadata: Dict, strict: bool, missing_keys: List[str],
                              unexpected_keys: List[str], error_msgs: List[str]) -> None:
        """Resize ``presence`` to the checkpoint's number of unlabeled images, then load."""
        saved = state_dict.get(prefix + 'presence')
        if (isinstance(saved, Tensor) and saved.dim() == 2
                and saved.shape[0] == self.num_classes
                and saved.shape[1] != self.num_unlabeled):
            self.resize_presence(saved.shape[1])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def compute_presence(self, teacher_pred: Tensor) -> Tensor:
        """Which classes each image contains, from the teacher's prediction.

        A class is present iff its predicted pixel fraction of the whole image
        is >= ``presence_area_thresh`` (applied as the whole pixel count
        ``ceil(thresh * H * W)``, at least 1). ``ignore_index`` pixels count
        for no class but do count in ``H * W``, like the original's
        ``update_cutmix_bank``. Sync-free.

        Args:
            teacher_pred (Tensor): (N, H, W) integer, the teacher's argmax.

        Returns:
            Tensor: (N, C) bool presence.

        Raises:
            ValueError: On a wrong shape or dtype; on CPU input, also on a
                value outside ``[0, C)`` other than ``ignore_index`` (on an
                accelerator such values are not checked, which would need a
                sync, and count for no class).
        """
        if teacher_pred.dim() != 3 or teacher_pred.is_floating_point() \
                or teacher_pred.dtype == torch.bool:
            raise ValueError('teacher_pred must be a (N, H, W) integer tensor, got '
                             f'shape {tuple(teacher_pred.shape)}, dtype {teacher_pred.dtype}')
        num, height, width = teacher_pred.shape
        pred = teacher_pred.reshape(num, height * width).long()
        in_range = (pred >= 0) & (pred < self.num_classes)
        if on_host(pred):  # value checks are free on the host only
            bad = ~in_range & (pred != self.ignore_index)
            if bool(bad.any()):
                raise ValueError(f'teacher_pred holds {pred[bad][0].item()}, neither a class '
                                 f'in [0, {self.num_classes}) nor ignore_index '
                                 f'{self.ignore_index}')
        # Slot C collects the pixels of no class.
        index = torch.where(in_range, pred, self.num_classes)
        counts = torch.zeros(num, self.num_classes + 1, dtype=torch.long, device=pred.device)
        counts.scatter_add_(1, index, torch.ones_like(index))
        min_pixels = _min_pixels(self.presence_area_thresh, height * width)
        return counts[:, :self.num_classes] >= min_pixels

    @staticmethod
    def merge_repeated(sample_idx: Tensor, presence: Tensor) -> Tensor:
        """Rows of one step's presence, OR-merged over repeated image indices.

        Two ranks (or two pairs) can hold crops of the same unlabeled image in
        one step, more so once ACM prefers the few images that show a rare
        class. A class counts as present when any of the crops shows it; every
        repeated index gets the same merged row, so writing the rows in any
        order gives the same table (``index_copy_`` with repeated indices
        leaves the winner unspecified on CUDA). Sync-free: an (M, M) equality
        matrix times the rows.

        Args:
            sample_idx (Tensor): (M,) integer indices into the unlabeled set.
            presence (Tensor): (M, C) bool rows.

        Returns:
            Tensor: (M, C) bool rows, equal for equal indices.
        """
        same = sample_idx[:, None] == sample_idx[None, :]
        return (same.float() @ presence.float()) > 0

    def write_presence(self, sample_idx: Tensor, presence: Tensor) -> Tensor:
        """Overwrite the presence-table columns of the given unlabeled images.

        In place and sync-free. Rows of a repeated index are OR-merged first
        (:meth:`merge_repeated`), so the result does not depend on the order
        of the rows or on the device.

        Args:
            sample_idx (Tensor): (M,) integer indices into the unlabeled set.
            presence (Tensor): (M, C) bool, e.g. from :meth:`compute_presence`.

        Returns:
            Tensor: (M, C) the rows written (merged), on the table's device,
            for a caller that mirrors the table elsewhere.

        Raises:
            ValueError: On wrong shapes or dtypes, and, when ``sample_idx`` is
                on the CPU, on an index outside ``[0, num_unlabeled)``. On an
                accelerator the range is not checked here (that would need a
                sync); ``index_copy_`` then fails with a device-side assert.
        """
        if sample_idx.dim() != 1 or sample_idx.is_floating_point() \
                or sample_idx.dtype == torch.bool:
            raise ValueError('sample_idx must be a (M,) integer tensor, got '
                             f'shape {tuple(sample_idx.shape)}, dtype {sample_idx.dtype}')
        if presence.dtype != torch.bool or tuple(presence.shape) != (sample_idx.numel(),
                                                                     self.num_classes):
            raise ValueError(f'presence must be a ({sample_idx.numel()}, {self.num_classes}) '
                             f'bool tensor, got shape {tuple(presence.shape)}, '
                             f'dtype {presence.dtype}')
        if on_host(sample_idx) and sample_idx.numel() > 0:  # free on the host only
            bad = (sample_idx < 0) | (sample_idx >= self.num_unlabeled)
            if bool(bad.any()):
                raise ValueError(f'sample_idx holds {sample_idx[bad][0].item()}, outside the '
                                 f'presence table [0, {self.num_unlabeled}); '
                                 'call resize_presence with the unlabeled set size')
        device = self.presence.device
        sample_idx = sample_idx.to(device).long()
        merged = self.merge_repeated(sample_idx, presence.to(device))
        self.presence.index_copy_(1, sample_idx, merged.t())
        return merged

    # ------------------------------------------------------------------ boxes
    def _label_map_size(self, height: int, width: int) -> Tuple[int, int]:
        """Size of the downsampled label map (longer side <= ``max_label_map_size``)."""
        longer = max(height, width)
        if longer <= self.max_label_map_size:
            return height, width
        scale = self.max_label_map_size / longer
        return max(1, round(height * scale)), max(1, round(width * scale))

    def component_boxes(self,
                        source_pred: Tensor,
                        classes: Tensor,
                        generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """Bounding box of a random qualifying component of each sampled class.

        In each source prediction (downsampled by nearest to the label-map
        size), the connected components of the pair's class whose area is
        >= ``component_area_thresh`` of the map qualify; one is picked
        uniformly (argmax of i.i.d. uniform scores over the fixed H*W id
        space: Gumbel-max with equal weights) and its bounding box scaled
        back to full resolution. Sync-free.

        Args:
            source_pred (Tensor): (P, H, W) long teacher argmax of the sources.
            classes (Tensor): (P,) long class per pair; -1 (or any value
                outside ``[0, C)``) matches no pixel.
            generator (torch.Generator, optional): Generator on the device.

        Returns:
            tuple[Tensor, Tensor]: boxes (P, 4) long ``(y0, x0, y1, x1)``,
            end-exclusive, in full-resolution pixels; found (P,) bool, False
            where no component qualifies (the box is then meaningless).
        """
        num, height, width = source_pred.shape
        device = source_pred.device
        small_h, small_w = self._label_map_size(height, width)
        rows = torch.arange(small_h, device=device) * height // small_h
        cols = torch.arange(small_w, device=device) * width // small_w
        small = source_pred.index_select(1, rows).index_select(2, cols)
        valid_class = (classes >= 0) & (classes < self.num_classes)
        target = torch.where(valid_class, classes, -1).view(num, 1, 1)
        mask = (small == target) & valid_class.view(num, 1, 1)
        comp = connected_components(mask, self.connectivity, self.num_cc_iterations)

        num_small = small_h * small_w
        flat = comp.view(num, num_small)
        index = torch.where(flat >= 0, flat, num_small)  # slot num_small: background
        areas = torch.zeros(num, num_small + 1, dtype=torch.long, device=device)
        areas.scatter_add_(1, index, torch.ones_like(index))
        qualifying = areas[:, :num_small] >= _min_pixels(self.component_area_thresh, num_small)
        scores = torch.rand(num, num_small, generator=generator, device=device)
        scores = scores.masked_fill(~qualifying, -1.0)
        chosen = scores.argmax(dim=1)
        found = qualifying.any(dim=1)

        selected = comp == chosen.view(num, 1, 1)
        ys = torch.arange(small_h, device=device).view(1, small_h, 1)
        xs = torch.arange(small_w, device=device).view(1, 1, small_w)
        y0 = torch.where(selected, ys, small_h).amin(dim=(1, 2))
        x0 = torch.where(selected, xs, small_w).amin(dim=(1, 2))
        y1 = torch.where(selected, ys, -1).amax(dim=(1, 2)) + 1
        x1 = torch.where(selected, xs, -1).amax(dim=(1, 2)) + 1
        # Small row i stands for full rows [i * H // h, (i + 1) * H // h).
        boxes = torch.stack([
            y0 * height // small_h, x0 * width // small_w,
            y1 * height // small_h, x1 * width // small_w
        ], dim=1)
        return boxes, found

    # ------------------------------------------------------------------ mixing
    def _check_inputs(self, target_images: Tensor, source_images: Tensor, target_pred: Tensor,
                      source_pred: Tensor, target_conf: Tensor, source_conf: Tensor,
                      classes: Tensor) -> None:
        """Raise ValueError naming the argument whose shape or dtype is wrong."""
        self.check_pairs(target_images, source_images, target_pred, source_pred, target_conf,
                         source_conf)
        num = target_images.shape[0]
        if tuple(classes.shape) != (num, ) or classes.is_floating_point() \
                or classes.dtype == torch.bool:
            raise ValueError(f'classes must be a ({num},) integer tensor, got shape '
                             f'{tuple(classes.shape)}, dtype {classes.dtype}')
        if on_host(classes):  # free on the host only
            bad = (classes < -1) | (classes >= self.num_classes)
            if bool(bad.any()):
                raise ValueError(f'classes holds {classes[bad][0].item()}, neither -1 nor a '
                                 f'class in [0, {self.num_classes})')

    def forward(self,
                target_images: Tensor,
                source_images: Tensor,
                target_pred: Tensor,
                source_pred: Tensor,
                target_conf: Tensor,
                source_conf: Tensor,
                classes: Tensor,
                generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mix each source's box into its target (Eq. 9).

        ``mixed = (1 - M) * target + M * source`` with M the pair's box, for
        the image, the teacher's pseudo-label and its confidence alike. The
        box is the bounding box of a random qualifying component of the
        pair's class in the source prediction
        (:meth:`component_boxes`); when the class is -1 or no component
        qualifies, it is a random box of area ``area_ratio``
        (:meth:`CutMix.random_boxes`). Sync-free; all
        randomness from ``generator`` or the device's default generator.

        Args:
            target_images (Tensor): (P, 3, H, W) float target images.
            source_images (Tensor): (P, 3, H, W) source images, same dtype.
            target_pred (Tensor): (P, H, W) long teacher argmax on the targets.
            source_pred (Tensor): (P, H, W) long teacher argmax on the sources.
            target_conf (Tensor): (P, H, W) float teacher max probability, targets.
            source_conf (Tensor): (P, H, W) float teacher max probability, sources.
            classes (Tensor): (P,) long sampled class per pair, -1 for none.
                On CPU, values outside ``[-1, C)`` raise; on an accelerator
                they are not checked (a sync) and act as -1.
            generator (torch.Generator, optional): Generator on the inputs'
                device.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: mixed_images (P, 3, H, W)
            in the images' dtype, mixed_pred (P, H, W) long, mixed_conf
            (P, H, W) at least float32, box_mask (P, H, W) bool (True where
            the source was pasted).
        """
        self._check_inputs(target_images, source_images, target_pred, source_pred,
                           target_conf, source_conf, classes)
        num, _, height, width = target_images.shape
        device = target_images.device
        classes = classes.to(device).long()
        with torch.no_grad():
            comp_boxes, found = self.component_boxes(source_pred.to(device).long(), classes,
                                                     generator)
            rand_boxes = self.random_boxes(num, height, width, device, generator)
            boxes = torch.where(found.view(num, 1), comp_boxes, rand_boxes)
        return self.mix(boxes, target_images, source_images, target_pred, source_pred,
                        target_conf, source_conf)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, '
                f'presence_area_thresh={self.presence_area_thresh}, '
                f'component_area_thresh={self.component_area_thresh}, '
                f'area_ratio={self.area_ratio}, max_label_map_size={self.max_label_map_size}')
