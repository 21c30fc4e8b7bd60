from .confidence_bank_hook import ConfidenceBankHook
from .finite_loss_hook import FiniteLossHook
from .preemption_checkpoint_hook import PreemptionCheckpointHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['ConfidenceBankHook', 'FiniteLossHook', 'PreemptionCheckpointHook', 'TeacherEMAHook']
