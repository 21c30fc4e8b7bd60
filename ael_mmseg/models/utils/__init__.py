from .confidence_bank import ConfidenceBank

__all__ = ['ConfidenceBank']
