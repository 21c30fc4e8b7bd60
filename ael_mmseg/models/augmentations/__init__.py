from .adaptive_copy_paste import AdaptiveCopyPaste
from .adaptive_cutmix import AdaptiveCutMix

__all__ = ['AdaptiveCopyPaste', 'AdaptiveCutMix']
