"""The DeepLabV3+ decoder of the original AEL code, as an mmseg decode head."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import ASPPHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from .pytorch_default_init import reset_to_pytorch_defaults


@MODELS.register_module()
class DenseDeepLabV3PlusHead(ASPPHead):
    """DeepLabV3+ with dense (not depthwise-separable) convolutions throughout.

    Follows ``dec_deeplabv3_plus`` of the original AEL code (hzhupku/SemiSeg-AEL,
    ``semseg/models/decoder.py`` and the ``ASPP`` of ``semseg/models/base.py``):

    - ASPP = mmseg's ``ASPPHead`` at ``channels=256``: image pooling, a 1x1
      branch and 3x3 branches at dilations 12/24/36 (bias-free convs + norm +
      ReLU), concatenated in that order, then a 3x3 ``bottleneck`` 1280 -> 256
      (bias-free) followed by ``Dropout2d(aspp_dropout_ratio)``.
    - Low-level projection of ``inputs[0]`` (layer1, 256 channels): 1x1 conv
      ``c1_in_channels -> c1_channels`` with a bias, norm, ReLU.
    - The ASPP output is resized bilinearly to the low-level size and
      concatenated *after* the low-level features ([low, aspp]).
    - Two fusion 3x3 convs (512 -> 256, 256 -> 256, each with a bias, norm,
      ReLU), ``Dropout2d(fusion_dropout_ratio)`` after the first and the head's
      own ``dropout_ratio`` after the second, then ``conv_seg`` 256 -> C.

    The convolution biases beside a norm layer are the original's (they are
    redundant but are parameters, so they are kept to load its checkpoints).
    ``init_like_pytorch=True`` gives every layer of the head PyTorch's default
    initialisation as in the original; ``False`` keeps mmseg's (Kaiming-normal
    convs, N(0, 0.01) classifier).

    Args:
        c1_in_channels (int): Channels of the low-level input ``inputs[0]``.
        c1_channels (int): Channels of its 1x1 projection. The original: 256.
        aspp_dropout_ratio (float): Dropout after the ASPP bottleneck.
        fusion_dropout_ratio (float): Dropout after the first fusion conv.
        init_like_pytorch (bool): Re-initialise the head with PyTorch's defaults.
        **kwargs: ``ASPPHead`` arguments (``in_channels``, ``channels``,
            ``dilations``, ``dropout_ratio``, ``num_classes``, ...).
    """

    def __init__(self,
                 c1_in_channels: int = 256,
                 c1_channels: int = 256,
                 aspp_dropout_ratio: float = 0.1,
                 fusion_dropout_ratio: float = 0.1,
                 init_like_pytorch: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if c1_in_channels <= 0 or c1_channels <= 0:
            raise ValueError('DenseDeepLabV3PlusHead needs positive c1_in_channels and '
                             f'c1_channels, got {c1_in_channels} and {c1_channels}')
        self.init_like_pytorch = init_like_pytorch
        self.aspp_dropout = nn.Dropout2d(aspp_dropout_ratio)
        layer_cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.c1_bottleneck = ConvModule(c1_in_channels, c1_channels, 1, bias=True, **layer_cfg)
        self.fusion_convs = nn.Sequential(
            ConvModule(c1_channels + self.channels, self.channels, 3, padding=1, bias=True,
                       **layer_cfg),
            nn.Dropout2d(fusion_dropout_ratio),
            ConvModule(self.channels, self.channels, 3, padding=1, bias=True, **layer_cfg))

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_like_pytorch:
            reset_to_pytorch_defaults(self)

    def forward(self, inputs):
        """Logits (N, num_classes, H/4, W/4) from the backbone's four outputs."""
        aspp = self.aspp_dropout(self._forward_feature(inputs))
        low_level = self.c1_bottleneck(inputs[0])
        aspp = resize(aspp, size=low_level.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)
        feats = self.fusion_convs(torch.cat([low_level, aspp], dim=1))
        return self.cls_seg(feats)
