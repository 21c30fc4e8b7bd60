"""Adaptive Equalization Learning: the mean teacher plus AEL's four parts."""
import inspect
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Tuple

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor, nn

from ael_mmseg.utils import keyed_random as kr
from ..augmentations import AdaptiveCutMix
from ..utils import (ConfidenceBank, acm_class_probabilities, acp_class_probabilities,
                     aes_sampling_rates)
from .mean_teacher_segmentor import MeanTeacherSegmentor


@dataclass
class AELStepRecord:
    """What one training step leaves for :meth:`AELSegmentor.finish_step`.

    Attributes:
        confidence_sums (Tensor): (C,) summed student probability of the
            true class over this rank's labeled pixels (Eq. 4).
        confidence_counts (Tensor): (C,) this rank's labeled pixel counts.
        presence_indices (Tensor, optional): (M,) unlabeled-set indices of the
            images the teacher predicted on (ACM only).
        presence_rows (Tensor, optional): (M, C) bool, which classes each of
            them shows (:meth:`AdaptiveCutMix.compute_presence`).
    """
    confidence_sums: Tensor
    confidence_counts: Tensor
    presence_indices: Optional[Tensor] = None
    presence_rows: Optional[Tensor] = None


class AppliedStep(NamedTuple):
    """What :meth:`AELSegmentor.finish_step` wrote, for a host-side mirror.

    Attributes:
        confidence (Tensor): (C,) the bank after the step.
        presence_indices (Tensor, optional): (M,) unlabeled indices whose
            presence columns were written (ACM only; all ranks' images).
        presence_rows (Tensor, optional): (M, C) bool, the columns written.
    """
    confidence: Tensor
    presence_indices: Optional[Tensor] = None
    presence_rows: Optional[Tensor] = None


@MODELS.register_module()
class AELSegmentor(MeanTeacherSegmentor):
    """Adaptive Equalization Learning (Hu et al., NeurIPS 2021).

    A :class:`MeanTeacherSegmentor` whose step adds AEL's parts, all driven by
    the confidence bank (Eq. 4, 7):

    * **ACP** (:class:`AdaptiveCopyPaste`): the labeled images get classes of
      a second labeled image pasted in -- when the batch holds such paste
      sources (``sup_paste`` samples: ``train_dataloader.dataset.paste_pipeline``
      is the one switch, the batch size follows);
    * **ACM** (:class:`AdaptiveCutMix`, Eq. 9): the unlabeled pairs are mixed
      with a box around a component of a class the data sampler drew for the
      source (``acm_class``); ``cutmix=dict(type='CutMix')`` mixes random
      boxes instead (ACM off);
    * **DR** and **AES** (:class:`AELWeightedCELoss`, Eq. 10-13): the
      unsupervised loss weighs pixels by the teacher's confidence and keeps
      them at the bank's AES rates (:func:`aes_sampling_rates`).

    The step stages its bank statistics (and, with ACM, the presence rows of
    the unlabeled images) in one :class:`AELStepRecord`;
    :meth:`finish_step` (called by :class:`AELHook` after the optimiser
    step) reduces them over the ranks and applies them. The random draws of
    ACP, the CutMix boxes and components and AES come from generators keyed
    by (seed, rank, iteration, slot) (:meth:`step_generator`).

    Args:
        segmentor (dict): Config of the student (and teacher) segmentor.
        unsup_loss (dict): Config of the unsupervised loss.
        confidence_bank (dict): Kwargs of :class:`ConfidenceBank`
            (``num_classes`` defaults to the decode head's).
        cutmix (dict): :class:`AdaptiveCutMix` (ACM) or :class:`CutMix`.
        copy_paste (dict, optional): :class:`AdaptiveCopyPaste` settings, used
            when the batch has paste sources; None refuses such batches.
        semi_train_cfg (dict, optional): See ``SEMI_TRAIN_DEFAULTS``.
        semi_test_cfg (dict, optional): ``predict_on`` 'teacher' or 'student'.
        data_preprocessor (dict, optional): Applied to the whole batch.
        init_cfg (dict, optional): Initialisation config.
    """

    roles = ('sup', 'sup_paste', 'unsup', 'unsup_source')

    def __init__(self,
                 segmentor: ConfigType,
                 unsup_loss: ConfigType = dict(type='AELWeightedCELoss'),
                 confidence_bank: OptConfigType = None,
                 cutmix: ConfigType = dict(type='AdaptiveCutMix'),
                 copy_paste: OptConfigType = dict(type='AdaptiveCopyPaste'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(segmentor, unsup_loss, semi_train_cfg=semi_train_cfg,
                         semi_test_cfg=semi_test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        bank_cfg = dict(confidence_bank or {})
        bank_num_classes = bank_cfg.pop('num_classes', self.num_classes)
        if bank_num_classes != self.num_classes:
            raise ValueError(f'AELSegmentor: confidence_bank.num_classes={bank_num_classes} '
                             f'but the decode head has num_classes={self.num_classes}')
        self.confidence_bank = ConfidenceBank(self.num_classes, **bank_cfg)
        if cutmix is None:
            raise ValueError("AELSegmentor: `cutmix` is required (dict(type='AdaptiveCutMix') "
                             "for ACM, dict(type='CutMix') for random boxes)")
        self.cutmix = self._build_part(cutmix, 'cutmix')
        self.copy_paste = self._build_part(copy_paste, 'copy_paste')
        # This step's bank statistics and presence rows; set by loss(),
        # consumed by finish_step() or discard_step().
        self._step_record: Optional[AELStepRecord] = None

    def _build_part(self, cfg: OptConfigType, name: str) -> Optional[nn.Module]:
        """Build an AEL part, giving it the head's num_classes / ignore_index if it takes them."""
        if cfg is None:
            return None
        cfg = dict(cfg)
        part_type = cfg.get('type')
        part_cls = MODELS.get(part_type) if isinstance(part_type, str) else part_type
        if part_cls is None:
            raise KeyError(f'AELSegmentor: {name}.type={part_type!r} is not registered')
        accepted = inspect.signature(part_cls.__init__).parameters
        if 'num_classes' in accepted:
            num_classes = cfg.setdefault('num_classes', self.num_classes)
            if num_classes != self.num_classes:
                raise ValueError(f'AELSegmentor: {name}.num_classes={num_classes} but the '
                                 f'decode head has num_classes={self.num_classes}')
        if 'ignore_index' in accepted:
            cfg.setdefault('ignore_index', self.ignore_index)
        return MODELS.build(cfg)

    @property
    def step_record(self) -> Optional[AELStepRecord]:
        """AELStepRecord or None: what this step staged so far (read-only view)."""
        return self._step_record

    @property
    def uses_acm(self) -> bool:
        """bool: Whether CutMix sources are chosen adaptively (ACM, Eq. 9)."""
        return isinstance(self.cutmix, AdaptiveCutMix)

    def size_presence_table(self, num_unlabeled: int) -> int:
        """Give the ACM presence table one column per unlabeled image (ACM only).

        Keeps a table of the right size (e.g. a resumed one); any other size
        starts a new, all-False table.

        Returns:
            int: The number of images the table covered before (0 when new).
        """
        covered = self.cutmix.num_unlabeled
        if covered != num_unlabeled:
            self.cutmix.resize_presence(num_unlabeled)
        return covered

    # ------------------------------------------------------------ the step
    def augment_labeled(self, inputs: Tensor, gt_seg: Tensor,
                        groups: Dict[str, Tuple[Tensor, SampleList]]) -> Tuple[Tensor, Tensor]:
        """ACP: paste bank-sampled classes of the ``sup_paste`` images, when there are any."""
        if 'sup_paste' not in groups:
            return inputs, gt_seg
        paste_inputs, paste_samples = groups['sup_paste']
        sup_samples = groups['sup'][1]
        if self.copy_paste is None:
            raise ValueError('AELSegmentor: the batch has copy-paste sources (`sup_paste` '
                             'samples) but model.copy_paste is None; set '
                             'train_dataloader.dataset.paste_pipeline=None to train without ACP')
        if len(paste_samples) != len(sup_samples):
            raise ValueError(f'AELSegmentor: {len(sup_samples)} `sup` but {len(paste_samples)} '
                             '`sup_paste` samples; ACP needs one paste source per labeled image '
                             '(use SemiSegBatchSampler)')
        paste_seg = torch.stack([s.gt_sem_seg.data[0] for s in paste_samples]).long()
        inputs, gt_seg, _ = self.copy_paste(inputs, gt_seg, paste_inputs, paste_seg,
                                            self.confidence_bank.confidence,
                                            generator=self.step_generator(inputs.device,
                                                                          kr.SLOT_ACP))
        for sample, seg in zip(sup_samples, gt_seg):  # the decode head's loss reads these
            sample.gt_sem_seg.data = seg[None]
        return inputs, gt_seg

    def mix_pairs(self, target_inputs: Tensor, source_inputs: Tensor, target_pred: Tensor,
                  source_pred: Tensor, target_conf: Tensor, source_conf: Tensor,
                  target_samples: SampleList,
                  source_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """ACM (Eq. 9): each source's box around a component of its ``acm_class``.

        Also records which classes the teacher sees in every unlabeled image
        of the step, for the presence table that the next ACM choices read.
        """
        generator = self.step_generator(target_inputs.device, kr.SLOT_CUTMIX)
        if not self.uses_acm:
            mixed_inputs, mixed_pred, mixed_conf, _ = self.cutmix(
                target_inputs, source_inputs, target_pred, source_pred, target_conf,
                source_conf, generator=generator)
            return mixed_inputs, mixed_pred, mixed_conf
        self._record_presence((target_pred, source_pred), target_samples + source_samples)
        classes = torch.tensor([s.metainfo.get('acm_class', -1) for s in source_samples],
                               dtype=torch.long).to(target_pred.device, non_blocking=True)
        mixed_inputs, mixed_pred, mixed_conf, _ = self.cutmix(
            target_inputs, source_inputs, target_pred, source_pred, target_conf, source_conf,
            classes, generator=generator)
        return mixed_inputs, mixed_pred, mixed_conf

    def observe_labeled(self, logits: Tensor, gt_seg: Tensor) -> None:
        """Eq. 4: stage this step's per-class sums and counts for the bank."""
        sums, counts = self.confidence_bank.batch_statistics(logits, gt_seg, self.ignore_index)
        record = self._step_record
        if record is None:
            self._step_record = AELStepRecord(sums, counts)
        else:  # gradient accumulation: the step statistic covers every forward
            record.confidence_sums = record.confidence_sums + sums
            record.confidence_counts = record.confidence_counts + counts

    def unsup_loss_kwargs(self, slot: int, device: torch.device) -> dict:
        """AES keep rates (Eq. 10-11) of the bank and a keyed generator, when the loss samples."""
        if not getattr(self.unsup_loss, 'use_equalization_sampling', False):
            return {}
        beta = getattr(self.unsup_loss, 'beta', 1.0)
        return dict(sampling_rates=aes_sampling_rates(self.confidence_bank.confidence, beta),
                    generator=self.step_generator(device, slot))

    def _record_presence(self, preds: Tuple[Tensor, ...], samples: SampleList) -> None:
        """Stage the presence rows of the images behind ``preds`` (in ``samples`` order).

        One small (N, C) row block per prediction, concatenated: no copy of the
        (N, H, W) predictions themselves.
        """
        indices = [s.metainfo.get('sample_idx', -1) for s in samples]
        if min(indices) < 0:
            raise KeyError('AELSegmentor: unlabeled samples need `sample_idx` (their index in '
                           'the unlabeled set) for the ACM presence table; use SemiSegDataset')
        device = preds[0].device
        sample_idx = torch.tensor(indices, dtype=torch.long).to(device, non_blocking=True)
        rows = torch.cat([self.cutmix.compute_presence(pred) for pred in preds])
        record = self._step_record
        if record is None:  # presence comes before the bank statistics in a step
            record = self._step_record = AELStepRecord(
                torch.zeros(self.num_classes, device=device),
                torch.zeros(self.num_classes, device=device))
        if record.presence_indices is None:
            record.presence_indices, record.presence_rows = sample_idx, rows
        else:  # gradient accumulation: every forward's images
            record.presence_indices = torch.cat([record.presence_indices, sample_idx])
            record.presence_rows = torch.cat([record.presence_rows, rows])

    # ------------------------------------------------------- after the step
    @torch.no_grad()
    def finish_step(self) -> Optional[AppliedStep]:
        """Apply this step's record on every rank alike, then clear it.

        Sums and counts are all-reduced before the Eq. 7 update, so the bank
        is the same on every rank and independent of how the global batch is
        split; the presence rows of all ranks are all-gathered and written
        (:meth:`AdaptiveCutMix.write_presence` OR-merges repeated images), so
        every rank holds the same table. Sync-free on one process; with
        several, two small collectives.

        Returns:
            AppliedStep or None: The bank and the presence columns written
            (device tensors), None when the step staged nothing.
        """
        record = self._take_step_record()
        if record is None:
            return None
        sums, counts = record.confidence_sums, record.confidence_counts
        if dist.get_world_size() > 1:
            packed = torch.stack([sums, counts])
            dist.all_reduce(packed, op='sum')
            sums, counts = packed[0], packed[1]
        self.confidence_bank.update(sums, counts)
        if record.presence_indices is None:
            return AppliedStep(self.confidence_bank.confidence)
        indices, rows = record.presence_indices, record.presence_rows
        if dist.get_world_size() > 1:
            indices = torch.cat(dist.all_gather(indices))
            rows = torch.cat(dist.all_gather(rows.to(torch.uint8))).bool()
        merged = self.cutmix.write_presence(indices, rows)
        return AppliedStep(self.confidence_bank.confidence, indices, merged)

    def discard_step(self) -> None:
        """Forget this step's record (a skipped non-finite step)."""
        self._take_step_record()

    def _take_step_record(self) -> Optional[AELStepRecord]:
        """The one place the record is cleared: return it and start the next step empty."""
        record, self._step_record = self._step_record, None
        return record

    @torch.no_grad()
    def sampling_distributions(self) -> Dict[str, Tensor]:
        """The bank and the per-class distributions it drives, as training computes them.

        Returns:
            dict[str, Tensor]: (C,) ``conf`` (Eq. 7), ``acm_prob`` (Eq. 9),
            ``aes_rate`` (Eq. 10-11, with the loss's beta) and, with ACP
            settings, ``acp_prob`` over the allowed classes.
        """
        confidence = self.confidence_bank.confidence
        series = dict(conf=confidence, acm_prob=acm_class_probabilities(confidence),
                      aes_rate=aes_sampling_rates(confidence,
                                                  getattr(self.unsup_loss, 'beta', 1.0)))
        if self.copy_paste is not None:
            series['acp_prob'] = acp_class_probabilities(confidence, self.copy_paste.allowed_mask)
        return series

    def parts_summary(self) -> str:
        """One line naming which AEL parts this model runs."""
        loss = self.unsup_loss
        on = dict(ACM=self.uses_acm, ACP=self.copy_paste is not None,
                  DR=bool(getattr(loss, 'use_dynamic_reweighting', False)),
                  AES=bool(getattr(loss, 'use_equalization_sampling', False)))
        text = ', '.join(f"{name} {'on' if value else 'off'}" for name, value in on.items())
        if self.copy_paste is not None:
            text += ' (ACP runs on batches with copy-paste sources)'
        return text

    def init_weights(self) -> None:
        super().init_weights()
        print_log(f'AELSegmentor: {self.parts_summary()}', logger='current')
