from .acm_source_hook import ACMSourceHook
from .confidence_bank_hook import ConfidenceBankHook
from .confidence_bank_logger_hook import ConfidenceBankLoggerHook
from .finite_loss_hook import FiniteLossHook
from .preemption_checkpoint_hook import PreemptionCheckpointHook
from .resumable_checkpoint_hook import ResumableCheckpointHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = [
    'ACMSourceHook', 'ConfidenceBankHook', 'ConfidenceBankLoggerHook', 'FiniteLossHook',
    'PreemptionCheckpointHook', 'ResumableCheckpointHook', 'TeacherEMAHook'
]
