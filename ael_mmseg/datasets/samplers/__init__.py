from .acm_source_state import ACMSourceState
from .semi_seg_batch_sampler import SemiSegBatchSampler, semi_sampler_of
from .semi_seg_sampler import SemiSegSampler

__all__ = ['ACMSourceState', 'SemiSegBatchSampler', 'SemiSegSampler', 'semi_sampler_of']
