"""Convert the original AEL code's ImageNet ResNet checkpoint to mmseg's ResNetV1c keys.

The original AEL code initialises its backbone from PyTorch-Encoding's deep-stem
ResNet (``resnet101-2a57e44d.pth`` for ResNet-101): a torchvision-style state
dict whose stem is ``conv1`` = Sequential(conv 3->64, BN, ReLU, conv 64->64, BN,
ReLU, conv 64->128) followed by ``bn1`` (128). mmseg's ``ResNetV1c`` at
``stem_channels=128`` (and ``CeilPoolResNetV1c``) holds the same tensors as
``stem`` = Sequential(conv, BN, ReLU, conv, BN, ReLU, conv, BN, ReLU)::

    conv1.0 -> stem.0   conv1.1 -> stem.1   conv1.3 -> stem.3
    conv1.4 -> stem.4   conv1.6 -> stem.6   bn1     -> stem.7
    layer1..layer4      unchanged           fc      -> dropped (ImageNet classifier)

Any other key is refused by name. The output is a plain state dict, the format
of ``open-mmlab://resnet101_v1c``, for ``pretrained=`` or ``init_cfg=dict(type=
'Pretrained', checkpoint=...)``::

    python tools/model_converters/deepstem_resnet_to_mmseg.py \\
        resnet101-2a57e44d.pth checkpoints/resnet101-2a57e44d_mmseg.pth
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch

STEM_RENAMES = {'conv1.0.': 'stem.0.', 'conv1.1.': 'stem.1.', 'conv1.3.': 'stem.3.',
                'conv1.4.': 'stem.4.', 'conv1.6.': 'stem.6.', 'bn1.': 'stem.7.'}
KEPT = re.compile(r'^layer[1-4]\.')
DROPPED = re.compile(r'^fc\.')


def convert_deepstem_resnet(
        state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename a deep-stem ResNet state dict to ``ResNetV1c(stem_channels=128)`` keys.

    Args:
        state_dict (dict[str, Tensor]): The original checkpoint's tensors (an
            optional ``module.`` prefix is stripped).

    Returns:
        OrderedDict[str, Tensor]: The same tensors under mmseg's names, without
        the ImageNet classifier ``fc``.

    Raises:
        KeyError: If a key belongs to none of stem, layer1-4 and fc.
    """
    converted, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        name = key[len('module.'):] if key.startswith('module.') else key
        if DROPPED.match(name):
            continue
        prefix = next((p for p in STEM_RENAMES if name.startswith(p)), None)
        if prefix is not None:
            converted[STEM_RENAMES[prefix] + name[len(prefix):]] = value
        elif KEPT.match(name):
            converted[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError('not keys of a deep-stem ResNet checkpoint (conv1.{0,1,3,4,6}, bn1, '
                       f'layer1-4, fc): {unknown}')
    return converted


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of ``path``: a plain state dict or one under ``state_dict``."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{path}: expected a state dict, got {type(checkpoint).__name__}')
    return checkpoint.get('state_dict', checkpoint)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert the original AEL code's deep-stem ImageNet ResNet checkpoint "
        "(PyTorch-Encoding's resnet101-2a57e44d.pth) to mmseg ResNetV1c keys")
    parser.add_argument('src', help='the original checkpoint')
    parser.add_argument('dst', help='where to write the converted state dict')
    args = parser.parse_args(argv)
    source = load_state_dict(args.src)
    converted = convert_deepstem_resnet(source)
    torch.save(converted, args.dst)
    print(f'{len(converted)} tensors written to {args.dst} '
          f'({len(source) - len(converted)} classifier tensors dropped)')


if __name__ == '__main__':
    main()
