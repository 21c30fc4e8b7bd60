"""Connected-component labelling of binary masks, on the tensor's device.

Adaptive CutMix (AEL, Eq. 9) needs the connected components of one class in
the teacher's prediction of every source image. The original code labelled
them on the host with ``skimage.measure.label`` (full, i.e. 8-, connectivity),
one image at a time, after copying the prediction off the GPU. Here the
labelling runs batched on the mask's device with no host-device
synchronisation: an extremal-label propagation with hooking and pointer
jumping (in the spirit of Shiloach-Vishkin / FastSV). Every foreground pixel
starts with its own flat index as label and labels only grow, so we propagate
the *largest* index (``max_pool2d`` needs no negation; propagating the smallest
is the mirror image). A label is always the index of a pixel of the same
component whose own label is no smaller; each iteration

1. *propagates*: every foreground pixel reads the largest label among itself
   and its foreground neighbours (``max_pool2d``, with -1 on the background so
   labels never cross it);
2. *hooks*: the pixel that a pixel's label points to (the root of its tree)
   also takes that largest neighbouring label (``scatter_reduce`` amax), which
   merges whole trees at once;
3. *jumps*: every pixel takes the label held by the pixel its label points to
   (``gather``), halving the paths.

The iteration count is fixed in advance (no data-dependent stopping, which
would need a sync). Labels only ever move between connected foreground
pixels, so the result is always a *refinement* of the true partition: pixels
of different components never share a label. If the count is too small for a
component (a very long, snake-shaped one) that component comes back split into
several pieces; for Adaptive CutMix that only makes the pasted box smaller,
never wrong-class. ``num_iterations >= H * W`` is exact for every mask
(propagation alone needs at most the component's pixel count). The default,
``2 * ceil(log2(H * W))``, is 28 on a 128 x 128 map; exactness there needed at
most 13 on the adversarial shapes tried (snakes, spirals, combs and random
maps at the percolation threshold).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

# Labels are carried in float32 for ``max_pool2d``; integers are exact up to 2**24.
_MAX_PIXELS = 2**24


def default_num_iterations(height: int, width: int) -> int:
    """Default fixed iteration count for :func:`connected_components`.

    Args:
        height (int): Height of the mask.
        width (int): Width of the mask.

    Returns:
        int: ``2 * ceil(log2(height * width))``, at least 2.
    """
    return 2 * max(1, math.ceil(math.log2(max(height * width, 2))))


def _neighbourhood_max(neg_labels: Tensor, connectivity: int) -> Tensor:
    """Max of the negated labels over each pixel's neighbourhood (itself included).

    Args:
        neg_labels (Tensor): (N, 1, H, W) float, ``-label`` on the foreground
            and ``-inf`` on the background.
        connectivity (int): 4 or 8.

    Returns:
        Tensor: (N, 1, H, W) float, the neighbourhood maxima.
    """
    if connectivity == 8:
        return F.max_pool2d(neg_labels, kernel_size=3, stride=1, padding=1)
    vertical = F.max_pool2d(neg_labels, kernel_size=(3, 1), stride=1, padding=(1, 0))
    horizontal = F.max_pool2d(neg_labels, kernel_size=(1, 3), stride=1, padding=(0, 1))
    return torch.maximum(vertical, horizontal)


def connected_components(mask: Tensor,
                         connectivity: int = 8,
                         num_iterations: Optional[int] = None) -> Tensor:
    """Label the connected components of a batch of binary masks.

    Sync-free and vectorised over the batch; runs on ``mask.device``.

    Args:
        mask (Tensor): (N, H, W) bool, the foreground to label.
        connectivity (int): 8 (default, like ``skimage.measure.label`` in the
            original code and ``cv2.connectedComponents``) or 4.
        num_iterations (int, optional): Fixed number of iterations. Defaults
            to :func:`default_num_iterations`. Too few iterations can split a
            long winding component into pieces (see the module docstring);
            they never merge different components.

    Returns:
        Tensor: (N, H, W) long. Every foreground pixel holds the flat index
        ``y * W + x`` of the largest-index pixel of its component (of its
        piece, if the iterations ran out), in ``[0, H * W)``; background
        pixels hold -1.

    Raises:
        ValueError: If ``mask`` is not a 3-d bool tensor, ``connectivity`` is
            not 4 or 8, ``num_iterations`` is negative, or ``H * W`` exceeds
            2**24 (float32 labels would no longer be exact).
    """
    if mask.dim() != 3 or mask.dtype != torch.bool:
        raise ValueError('mask must be a (N, H, W) bool tensor, got '
                         f'shape {tuple(mask.shape)} and dtype {mask.dtype}')
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    num, height, width = mask.shape
    num_pixels = height * width
    if num_pixels > _MAX_PIXELS:
        raise ValueError(f'mask has H * W = {num_pixels} pixels, more than the '
                         f'{_MAX_PIXELS} that float32 labels represent exactly; '
                         'downsample it first')
    if num_iterations is None:
        num_iterations = default_num_iterations(height, width)
    if num_iterations < 0:
        raise ValueError(f'num_iterations must be >= 0, got {num_iterations}')

    fg = mask.reshape(num, num_pixels)
    background = ~fg
    # Labels as float32, (N, H * W): a pixel index on the foreground, -1 on the
    # background (so it never wins a max and never spreads).
    labels = torch.arange(num_pixels, device=mask.device, dtype=torch.float32)
    labels = labels.expand(num, num_pixels).masked_fill(background, -1.0)
    for _ in range(num_iterations):
        best = _neighbourhood_max(labels.view(num, 1, height, width), connectivity)
        best = best.view(num, num_pixels).masked_fill_(background, -1.0)
        # Hook: the pixel our label points to takes the best label too. Background
        # pixels scatter -1 into slot 0, which changes nothing.
        root = labels.long().clamp_(min=0)
        labels = labels.scatter_reduce(1, root, best, reduce='amax')
        labels = torch.maximum(labels, best)
        # Jump: take the label held by the pixel our label points to.
        pointer = labels.long().clamp_(min=0)
        labels = torch.gather(labels, 1, pointer).masked_fill_(background, -1.0)
    return labels.long().view(num, height, width)
