from .ael_hook import AELHook
from .finite_loss_hook import FiniteLossHook
from .preemption_checkpoint_hook import PreemptionCheckpointHook

__all__ = ['AELHook', 'FiniteLossHook', 'PreemptionCheckpointHook']
