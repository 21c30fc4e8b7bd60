from .semi_seg_batch_sampler import semi_sampler_of
from .semi_seg_sampler import SemiSegSampler

__all__ = ['SemiSegSampler', 'semi_sampler_of']
