from .ael_weighted_ce_loss import AELWeightedCELoss

__all__ = ['AELWeightedCELoss']
