from .semi_seg_sampler import SemiSegSampler

__all__ = ['SemiSegSampler']
