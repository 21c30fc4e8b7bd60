from .fast_forward_train_loop import FastForwardIterBasedTrainLoop
from .teacher_student_val_loop import TeacherStudentValLoop

__all__ = ['FastForwardIterBasedTrainLoop', 'TeacherStudentValLoop']
