"""The long-tailed toy dataset of the CPU demo: the dataset class and its writer."""
from .dataset import LongTailToyDataset
from .render import (IGNORE_INDEX, LONGTAIL_TOY_CLASSES, LONGTAIL_TOY_PALETTE, SyntheticDatasetInfo,
                     class_pixel_frequencies, make_longtail_toy, read_label_maps,
                     render_longtail_toy_sample)

__all__ = [
    'IGNORE_INDEX', 'LONGTAIL_TOY_CLASSES', 'LONGTAIL_TOY_PALETTE', 'LongTailToyDataset',
    'SyntheticDatasetInfo', 'class_pixel_frequencies', 'make_longtail_toy', 'read_label_maps',
    'render_longtail_toy_sample'
]
