from .longtail_toy import LongTailToyDataset
from .samplers import SemiSegSampler
from .semi_seg_dataset import SemiSegDataset

__all__ = ['LongTailToyDataset', 'SemiSegDataset', 'SemiSegSampler']
