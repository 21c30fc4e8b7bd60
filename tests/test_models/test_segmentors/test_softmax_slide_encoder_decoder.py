"""SoftmaxSlideEncoderDecoder: sliding windows averaged as probabilities (the original eval.py)."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS


def _segmentor(num_classes=5, mode='slide'):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='SoftmaxSlideEncoderDecoder',
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=8,
                      num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=dict(type='BN')),
        decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=8, num_convs=1,
                         num_classes=num_classes, norm_cfg=dict(type='BN'),
                         align_corners=True),
        test_cfg=ConfigDict(mode=mode, crop_size=(33, 33), stride=(22, 22)))).eval()


def _windows(h, w, crop=33, stride=22):
    """The original eval.py's grid: ceil((H - crop) / stride) + 1, last window flush."""
    rows = -(-(h - crop) // stride) + 1
    cols = -(-(w - crop) // stride) + 1
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * stride + crop, h), min(j * stride + crop, w)
            yield y2 - crop, y2, x2 - crop, x2


def test_slide_averages_window_softmax_as_the_original():
    model = _segmentor()
    model.decode_head.conv_seg.weight.data.mul_(100)  # confident, window-dependent logits
    x = torch.randn(1, 3, 60, 81)
    metas = [dict(img_shape=(60, 81), ori_shape=(60, 81), pad_shape=(60, 81))]
    with torch.no_grad():
        probs = model.slide_inference(x, metas)
        total = torch.zeros(1, 5, 60, 81)
        count = torch.zeros(1, 1, 60, 81)
        logit_total = torch.zeros(1, 5, 60, 81)
        for y1, y2, x1, x2 in _windows(60, 81):
            crop = x[:, :, y1:y2, x1:x2]
            logits = super(type(model), model).encode_decode(crop, [dict(img_shape=(33, 33))])
            total[:, :, y1:y2, x1:x2] += logits.softmax(dim=1)
            logit_total[:, :, y1:y2, x1:x2] += logits
            count[:, :, y1:y2, x1:x2] += 1
    torch.testing.assert_close(probs, total / count)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1, 60, 81))
    # mmseg's slide averages logits instead: a different map where windows overlap.
    assert not torch.allclose(probs, (logit_total / count).softmax(dim=1), atol=1e-3)


def test_whole_mode_and_later_calls_give_logits():
    model = _segmentor(mode='whole')
    x = torch.randn(1, 3, 40, 40)
    metas = [dict(img_shape=(40, 40), ori_shape=(40, 40), pad_shape=(40, 40))]
    with torch.no_grad():
        whole = model.inference(x, metas)
        model.slide_inference(x, metas)
        logits = model.encode_decode(x, metas)
    assert not torch.allclose(whole.sum(dim=1), torch.ones(1, 40, 40))
    torch.testing.assert_close(model.whole_inference(x, metas), logits)


def test_a_single_output_channel_is_refused():
    with pytest.raises(ValueError, match='>= 2 output channels'):
        _segmentor(num_classes=1)
