from .longtail_toy import LongTailToyDataset
from .samplers import SemiSegBatchSampler, SemiSegSampler, semi_sampler_of
from .semi_seg_dataset import SemiSegDataset
from .transforms import TwoRangeRandomResize

__all__ = [
    'LongTailToyDataset', 'SemiSegBatchSampler', 'SemiSegDataset', 'SemiSegSampler',
    'semi_sampler_of', 'TwoRangeRandomResize'
]
