"""The dataset class that reads the long-tailed toy dataset (written by ``make_longtail_toy``)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .render import LONGTAIL_TOY_CLASSES, LONGTAIL_TOY_PALETTE


@DATASETS.register_module()
class LongTailToyDataset(BaseSegDataset):
    """A synthetic, long-tailed 10-class segmentation dataset.

    Three "stuff" classes hold about 90% of the pixels and four small-object
    classes about 0.1-0.5% each; classes overlap in colour and differ in
    texture and shape. See :mod:`ael_mmseg.datasets.longtail_toy.render` for the
    design and ``tools/misc/generate_longtail_toy.py`` to write it.

    Layout::

        data_root/img_dir/{train,val}/<id>.png
        data_root/ann_dir/{train,val}/<id>.png
        data_root/splits/{labeled,unlabeled,val}.txt

    Use ``ann_file='splits/labeled.txt'`` (or ``unlabeled.txt``) with
    ``data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train')``
    for the two training subsets.

    Args:
        img_suffix (str): Suffix of images. Default: '.png'.
        seg_map_suffix (str): Suffix of label maps. Default: '.png'.
        reduce_zero_label (bool): Label 0 is a real class here. Default: False.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(classes=LONGTAIL_TOY_CLASSES, palette=LONGTAIL_TOY_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
