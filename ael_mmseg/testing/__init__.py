"""Helpers for tests and demos: synthetic datasets written to disk."""
from .synthetic_data import (IGNORE_INDEX, LONGTAIL_TOY_CLASSES, LONGTAIL_TOY_PALETTE,
                             SyntheticDatasetInfo, class_pixel_frequencies, make_longtail_toy,
                             make_mini_cityscapes, make_mini_voc, read_label_maps,
                             render_longtail_toy_sample)

__all__ = [
    'IGNORE_INDEX', 'LONGTAIL_TOY_CLASSES', 'LONGTAIL_TOY_PALETTE', 'SyntheticDatasetInfo',
    'class_pixel_frequencies', 'make_longtail_toy', 'make_mini_cityscapes', 'make_mini_voc',
    'read_label_maps', 'render_longtail_toy_sample'
]
