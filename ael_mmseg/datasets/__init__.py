from .longtail_toy import LongTailToyDataset
from .samplers import SemiSegSampler, semi_sampler_of
from .semi_seg_dataset import SemiSegDataset

__all__ = ['LongTailToyDataset', 'SemiSegDataset', 'SemiSegSampler', 'semi_sampler_of']
