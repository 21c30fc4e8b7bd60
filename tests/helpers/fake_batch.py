"""A normalised AEL batch in memory, for tests."""
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


def make_semi_batch(num_labeled: int = 2,
                    num_pairs: int = 1,
                    size: int = 32,
                    num_classes: int = 10,
                    seed: int = 0,
                    acm_class: Callable[[int], int] = lambda i: 3,
                    ignored_rows: int = 0,
                    copy_paste: bool = True) -> Tuple[torch.Tensor, List[SegDataSample]]:
    """Random images and labels with every AEL role, as SemiSegSampler orders them.

    Args:
        num_labeled (int): ``sup`` (and as many ``sup_paste``) samples.
        num_pairs (int): CutMix pairs (``unsup`` + ``unsup_source``).
        size (int): Image side.
        num_classes (int): Labels are uniform in ``[0, num_classes)``.
        seed (int): Seed of the batch.
        acm_class (callable): Batch position -> ACM class of a source.
        ignored_rows (int): Top rows of every label map set to 255.
        copy_paste (bool): Whether the batch has the ``sup_paste`` samples (as
            a dataset with a ``paste_pipeline`` gives).

    Returns:
        tuple[Tensor, list[SegDataSample]]: (N, 3, size, size) inputs and samples.
    """
    generator = torch.Generator().manual_seed(seed)
    roles = ['sup'] * num_labeled + ['sup_paste'] * (num_labeled if copy_paste else 0) + \
        ['unsup'] * num_pairs + ['unsup_source'] * num_pairs
    inputs = torch.randn(len(roles), 3, size, size, generator=generator)
    samples: List[SegDataSample] = []
    for i, role in enumerate(roles):
        sample = SegDataSample()
        source_class: Optional[int] = acm_class(i) if role == 'unsup_source' else -1
        sample.set_metainfo(dict(ael_role=role, sample_idx=i % 4, acm_class=source_class,
                                 img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        if role.startswith('sup'):
            label = torch.randint(0, num_classes, (1, size, size), generator=generator)
            label[:, :ignored_rows] = 255
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


def toy_model_cfg(size: int = 32):
    """The toy AEL config's model, for ``size`` crops, with no warm-up or ramp-up."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from .stock_tools import TOY_CONFIG
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.data_preprocessor.size = (size, size)
    cfg.semi_train_cfg.warmup_iters = 0
    cfg.semi_train_cfg.rampup_iters = 0
    return cfg
