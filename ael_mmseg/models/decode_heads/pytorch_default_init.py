"""Reset a head's layers to PyTorch's own initialisation."""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def reset_to_pytorch_defaults(module: nn.Module) -> None:
    """Re-run ``reset_parameters`` of every convolution and norm in ``module``.

    The original AEL code builds its decoder and auxiliary head from bare
    ``nn.Conv2d`` / ``nn.BatchNorm2d`` and never re-initialises them, so they
    keep PyTorch's defaults (Kaiming-uniform with ``a=sqrt(5)`` weights and
    uniform biases). mmcv's ``ConvModule`` instead applies Kaiming-normal at
    construction and mmseg's heads draw ``conv_seg`` from N(0, 0.01); calling
    this after those undoes both.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, _BatchNorm)):
            layer.reset_parameters()
