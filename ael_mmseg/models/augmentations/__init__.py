from .adaptive_copy_paste import AdaptiveCopyPaste

try:  # TEMPORARY while adaptive_cutmix.py is being written
    from .adaptive_cutmix import AdaptiveCutMix
except ImportError:
    AdaptiveCutMix = None

__all__ = ['AdaptiveCopyPaste', 'AdaptiveCutMix']
