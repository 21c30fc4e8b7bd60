"""CutMix of unlabeled target/source pairs with random boxes (the mean-teacher baseline)."""
import math
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn


def on_host(tensor: Tensor) -> bool:
    """Whether value checks on ``tensor`` are free (it lives on the CPU)."""
    return tensor.device.type == 'cpu'


@MODELS.register_module()
class CutMix(nn.Module):
    """CutMix with one random box per target/source pair.

    ``mixed = (1 - M) * target + M * source`` for the image, the teacher's
    pseudo-label and its confidence alike, M a random box of area
    ``area_ratio`` of the image (the original code's ``init_cutmix``). The
    CutMix mean teacher baseline mixes with this; :class:`AdaptiveCutMix`
    (ACM, Eq. 9) uses it where no component of the sampled class qualifies.
    Sync-free.

    Args:
        area_ratio (float): Box area as a fraction of the image, in (0, 1].
            Defaults to 0.5 (the original's).
    """

    def __init__(self, area_ratio: float = 0.5) -> None:
        super().__init__()
        if not 0.0 < area_ratio <= 1.0:
            raise ValueError(f'area_ratio must be in (0, 1], got {area_ratio}')
        self.area_ratio = area_ratio

    def random_boxes(self, num: int, height: int, width: int, device: torch.device,
                     generator: Optional[torch.Generator] = None) -> Tensor:
        """Random boxes of area ~``area_ratio``, as the original's ``init_cutmix``.

        Height fraction ``exp(U * log(ratio))``, width fraction ``ratio / that``,
        both rounded to pixels, at a uniformly random position.

        Args:
            num (int): Number of boxes P.
            height (int): Image height H.
            width (int): Image width W.
            device (torch.device): Device of the boxes.
            generator (torch.Generator, optional): Generator on ``device``.

        Returns:
            Tensor: (P, 4) long boxes ``(y0, x0, y1, x1)``, end-exclusive.
        """
        u = torch.rand(num, 3, generator=generator, device=device)
        y_prop = torch.exp(u[:, 0] * math.log(self.area_ratio))
        x_prop = self.area_ratio / y_prop
        size_y = torch.round(y_prop * height)
        size_x = torch.round(x_prop * width)
        y0 = torch.round((height - size_y) * u[:, 1])
        x0 = torch.round((width - size_x) * u[:, 2])
        return torch.stack([y0, x0, y0 + size_y, x0 + size_x], dim=1).long()

    @staticmethod
    def check_pairs(target_images: Tensor, source_images: Tensor, target_pred: Tensor,
                    source_pred: Tensor, target_conf: Tensor, source_conf: Tensor) -> None:
        """Raise ValueError naming the argument whose shape or dtype is wrong."""
        if target_images.dim() != 4:
            raise ValueError('target_images must be (P, C, H, W), got shape '
                             f'{tuple(target_images.shape)}')
        num, _, height, width = target_images.shape
        if source_images.shape != target_images.shape or \
                source_images.dtype != target_images.dtype:
            raise ValueError('source_images must match target_images (shape '
                             f'{tuple(target_images.shape)}, dtype {target_images.dtype}), '
                             f'got {tuple(source_images.shape)}, {source_images.dtype}')
        for name, tensor, floating in (('target_pred', target_pred, False),
                                       ('source_pred', source_pred, False),
                                       ('target_conf', target_conf, True),
                                       ('source_conf', source_conf, True)):
            if tuple(tensor.shape) != (num, height, width):
                raise ValueError(f'{name} must have shape {(num, height, width)}, '
                                 f'got {tuple(tensor.shape)}')
            if tensor.is_floating_point() != floating or tensor.dtype == torch.bool:
                kind = 'floating' if floating else 'integer'
                raise ValueError(f'{name} must be {kind}, got dtype {tensor.dtype}')

    @staticmethod
    def mix(boxes: Tensor, target_images: Tensor, source_images: Tensor, target_pred: Tensor,
            source_pred: Tensor, target_conf: Tensor,
            source_conf: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Paste each pair's box of the source onto the target (image, label, confidence).

        Args:
            boxes (Tensor): (P, 4) long ``(y0, x0, y1, x1)``, end-exclusive.
            Other arguments: as :meth:`forward`.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: As :meth:`forward`.
        """
        num, _, height, width = target_images.shape
        device = target_images.device
        with torch.no_grad():
            ys = torch.arange(height, device=device).view(1, height, 1)
            xs = torch.arange(width, device=device).view(1, 1, width)
            box_mask = ((ys >= boxes[:, 0].view(num, 1, 1)) & (ys < boxes[:, 2].view(num, 1, 1))
                        & (xs >= boxes[:, 1].view(num, 1, 1))
                        & (xs < boxes[:, 3].view(num, 1, 1)))
        mixed_images = torch.where(box_mask.unsqueeze(1), source_images, target_images)
        mixed_pred = torch.where(box_mask, source_pred.to(device), target_pred.to(device)).long()
        conf_dtype = torch.promote_types(target_conf.dtype, torch.float32)
        mixed_conf = torch.where(box_mask, source_conf.to(device, conf_dtype),
                                 target_conf.to(device, conf_dtype))
        return mixed_images, mixed_pred, mixed_conf, box_mask

    def forward(self,
                target_images: Tensor,
                source_images: Tensor,
                target_pred: Tensor,
                source_pred: Tensor,
                target_conf: Tensor,
                source_conf: Tensor,
                generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mix a random box of each source into its target.

        Args:
            target_images (Tensor): (P, 3, H, W) float target images.
            source_images (Tensor): (P, 3, H, W) source images, same dtype.
            target_pred (Tensor): (P, H, W) long teacher argmax on the targets.
            source_pred (Tensor): (P, H, W) long teacher argmax on the sources.
            target_conf (Tensor): (P, H, W) float teacher max probability, targets.
            source_conf (Tensor): (P, H, W) float teacher max probability, sources.
            generator (torch.Generator, optional): Generator on the images' device.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: mixed_images (P, 3, H, W)
            in the images' dtype, mixed_pred (P, H, W) long, mixed_conf
            (P, H, W) at least float32, box_mask (P, H, W) bool (True where
            the source was pasted).
        """
        self.check_pairs(target_images, source_images, target_pred, source_pred, target_conf,
                         source_conf)
        num, _, height, width = target_images.shape
        boxes = self.random_boxes(num, height, width, target_images.device, generator)
        return self.mix(boxes, target_images, source_images, target_pred, source_pred,
                        target_conf, source_conf)

    def extra_repr(self) -> str:
        return f'area_ratio={self.area_ratio}'
