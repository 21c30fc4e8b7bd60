from .biased_fcn_head import BiasedFCNHead
from .dense_deeplabv3plus_head import DenseDeepLabV3PlusHead

__all__ = ['BiasedFCNHead', 'DenseDeepLabV3PlusHead']
