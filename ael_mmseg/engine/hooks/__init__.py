from .confidence_bank_hook import ConfidenceBankHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['ConfidenceBankHook', 'TeacherEMAHook']
