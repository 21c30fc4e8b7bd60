from .ael_weighted_ce_loss import AELWeightedCELoss
from .prob_ohem_cross_entropy_loss import ProbOhemCrossEntropyLoss

__all__ = ['AELWeightedCELoss', 'ProbOhemCrossEntropyLoss']
