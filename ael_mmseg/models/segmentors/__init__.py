from .ael_segmentor import AELSegmentor, AELStepRecord
from .cutmix_mean_teacher import CutMixMeanTeacher
from .mean_teacher_segmentor import MeanTeacherSegmentor, MixedBatch
from .softmax_slide_encoder_decoder import SoftmaxSlideEncoderDecoder

__all__ = [
    'AELSegmentor', 'AELStepRecord', 'CutMixMeanTeacher', 'MeanTeacherSegmentor', 'MixedBatch',
    'SoftmaxSlideEncoderDecoder'
]
