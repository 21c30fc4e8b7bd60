from .ael_segmentor import AELSegmentor

__all__ = ['AELSegmentor']
