from .two_range_random_resize import TwoRangeRandomResize

__all__ = ['TwoRangeRandomResize']
