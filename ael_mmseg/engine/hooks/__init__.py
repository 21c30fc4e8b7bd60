from .confidence_bank_hook import ConfidenceBankHook
from .finite_loss_hook import FiniteLossHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['ConfidenceBankHook', 'FiniteLossHook', 'TeacherEMAHook']
