"""The CutMix mean teacher: the paper's semi-supervised baseline."""
from typing import Tuple

from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ael_mmseg.utils.keyed_random import SLOT_CUTMIX
from ..augmentations import AdaptiveCutMix
from .mean_teacher_segmentor import MeanTeacherSegmentor


@MODELS.register_module()
class CutMixMeanTeacher(MeanTeacherSegmentor):
    """Mean teacher with CutMix on the unlabeled pairs (French et al., 2020).

    The baseline AEL is compared with (paper Tables 1-4): the student learns
    the teacher's pseudo-labels on unlabeled targets with a random box of a
    second unlabeled image pasted in (:class:`CutMix`); every pixel weighs
    the same. Everything else -- the student/teacher pair, EMA, warm-up,
    ``unsup_on_labeled``, the supervised heads -- is
    :class:`MeanTeacherSegmentor`'s, so the baseline and AEL differ only in
    AEL's parts. With ``semi_train_cfg.unsup_weight=0`` (and no unlabeled
    samples) it is supervised training with an EMA teacher.

    Args:
        segmentor (dict): Config of the student (and teacher) segmentor.
        unsup_loss (dict): Loss on the pseudo-labels. Default: cross entropy
            averaged over the non-ignored pixels (``AELWeightedCELoss`` with
            its re-weighting and sampling off, which computes that without a
            host read; mmseg's ``CrossEntropyLoss(avg_non_ignore=True)``
            counts the pixels on the host every step).
        cutmix (dict): Config of the mixing module. Default :class:`CutMix`.
        semi_train_cfg (dict, optional): See ``SEMI_TRAIN_DEFAULTS``.
        semi_test_cfg (dict, optional): ``predict_on`` 'teacher' or 'student'.
        data_preprocessor (dict, optional): Applied to the whole batch.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 unsup_loss: ConfigType = dict(
                     type='AELWeightedCELoss',
                     use_dynamic_reweighting=False,
                     use_equalization_sampling=False,
                     loss_name='loss_ce'),
                 cutmix: ConfigType = dict(type='CutMix'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(segmentor, unsup_loss, semi_train_cfg=semi_train_cfg,
                         semi_test_cfg=semi_test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.cutmix = MODELS.build(cutmix)
        if isinstance(self.cutmix, AdaptiveCutMix):
            raise TypeError('CutMixMeanTeacher mixes with random boxes (cutmix=dict(type='
                            "'CutMix')); Adaptive CutMix needs the confidence bank of "
                            'AELSegmentor')

    def mix_pairs(self, target_inputs: Tensor, source_inputs: Tensor, target_pred: Tensor,
                  source_pred: Tensor, target_conf: Tensor, source_conf: Tensor,
                  target_samples: SampleList,
                  source_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """A random box of each source pasted onto its target (:class:`CutMix`)."""
        mixed_inputs, mixed_pred, mixed_conf, _ = self.cutmix(
            target_inputs, source_inputs, target_pred, source_pred, target_conf, source_conf,
            generator=self.step_generator(target_inputs.device, SLOT_CUTMIX))
        return mixed_inputs, mixed_pred, mixed_conf
