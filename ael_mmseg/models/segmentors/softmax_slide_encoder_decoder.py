"""EncoderDecoder whose sliding-window test averages probabilities."""
from typing import List

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SoftmaxSlideEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` with softmax averaging in ``slide`` mode.

    The original AEL evaluation (``eval.py``, ``scale_crop_process``) applies a
    softmax to every window's logits and averages the probabilities where
    windows overlap; mmseg's ``slide_inference`` averages the logits. The
    windows (positions, stride, the last window flush with the border) are
    mmseg's, which equal the original's at its ``stride_rate=2/3`` when
    ``test_cfg.stride`` is ceil(2/3 * crop). ``whole`` mode and training are
    unchanged. In ``slide`` mode ``seg_logits`` holds the averaged
    probabilities (N, C, H, W); their argmax is the prediction.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.out_channels < 2:
            raise ValueError('SoftmaxSlideEncoderDecoder averages a softmax over classes and '
                             f'needs a decode head with >= 2 output channels, got '
                             f'{self.out_channels}')
        self._softmax_windows = False

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        logits = super().encode_decode(inputs, batch_img_metas)
        return logits.softmax(dim=1) if self._softmax_windows else logits

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Averaged window probabilities (N, C, H, W) over the padded input."""
        self._softmax_windows = True
        try:
            return super().slide_inference(inputs, batch_img_metas)
        finally:
            self._softmax_windows = False
