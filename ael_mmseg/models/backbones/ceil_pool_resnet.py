"""ResNetV1c whose stem max-pool rounds up, as the original AEL backbone."""
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class CeilPoolResNetV1c(ResNetV1c):
    """mmseg's ``ResNetV1c`` with ``MaxPool2d(3, 2, 1, ceil_mode=True)`` after the stem.

    The original AEL ResNet (``semseg/models/resnet.py``) is a deep-stem ResNet
    (3x3 convs 64-64-128 at ``stem_channels=128``) whose max-pool has
    ``ceil_mode=True``; mmseg's rounds down. Where the stem output side is odd
    (crops of 769 and 513) both give the same shapes; on an even side (e.g. a
    VOC test image 375 pixels high) the original's feature maps are one pixel
    larger. Parameters and state-dict keys are ``ResNetV1c``'s.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)
