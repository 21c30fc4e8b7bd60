from .semi_seg_train_loop import SemiSegIterBasedTrainLoop
from .teacher_student_val_loop import TeacherStudentValLoop

__all__ = ['SemiSegIterBasedTrainLoop', 'TeacherStudentValLoop']
