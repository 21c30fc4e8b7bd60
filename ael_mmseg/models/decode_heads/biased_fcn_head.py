"""The auxiliary head of the original AEL code, as an mmseg decode head."""
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from torch import nn

from .pytorch_default_init import reset_to_pytorch_defaults


@MODELS.register_module()
class BiasedFCNHead(FCNHead):
    """mmseg's ``FCNHead`` whose convolutions keep a bias beside their norm.

    Follows ``Aux_Module`` of the original AEL code (``semseg/models/decoder.py``):
    3x3 conv 1024 -> 256 *with* a bias, norm, ReLU, ``Dropout2d(0.1)``, 1x1
    classifier; i.e. ``FCNHead(num_convs=1, concat_input=False)`` plus the
    bias that ``ConvModule`` drops when a norm follows. ``init_like_pytorch``
    as in :class:`DenseDeepLabV3PlusHead`.

    Args:
        init_like_pytorch (bool): Re-initialise the head with PyTorch's defaults.
        **kwargs: ``FCNHead`` arguments.
    """

    def __init__(self, init_like_pytorch: bool = False, **kwargs):
        super().__init__(**kwargs)
        if self.concat_input:
            raise ValueError('BiasedFCNHead follows the original auxiliary head, which has '
                             'no input concatenation: set concat_input=False')
        self.init_like_pytorch = init_like_pytorch
        dilation = kwargs.get('dilation', 1)
        self.convs = nn.Sequential(*[
            ConvModule(
                self.in_channels if i == 0 else self.channels,
                self.channels,
                self.kernel_size,
                padding=self.kernel_size // 2 * dilation,
                dilation=dilation,
                bias=True,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for i in range(self.num_convs)
        ]) if self.num_convs > 0 else nn.Identity()

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_like_pytorch:
            reset_to_pytorch_defaults(self)
