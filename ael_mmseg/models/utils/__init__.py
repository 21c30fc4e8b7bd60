from .class_sampling import acm_class_probabilities, acp_class_probabilities, aes_sampling_rates
from .confidence_bank import ConfidenceBank

__all__ = [
    'ConfidenceBank', 'acm_class_probabilities', 'acp_class_probabilities', 'aes_sampling_rates'
]
