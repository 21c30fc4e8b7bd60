"""Semi-supervised segmentor of AEL: a student, an EMA teacher and the AEL parts."""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList, add_prefix
from torch import Tensor, nn

from ..utils import ConfidenceBank

# Keys of ``semi_train_cfg`` with their defaults (those of the paper / the
# original code). Unknown keys are refused so that a typo cannot silently
# fall back to a default.
SEMI_TRAIN_DEFAULTS = dict(
    # alpha of the total loss (Sec. 3.5): sup + alpha * unsup.
    unsup_weight=1.0,
    # The original also applies the unsupervised loss to the labeled images
    # against the teacher's pseudo-labels.
    unsup_on_labeled=True,
    # Teacher pixels whose max probability is below this are ignored (the
    # original's `threshold`: 0 on Cityscapes, 0.7 in its VOC config).
    pseudo_label_thresh=0.0,
    # 'train': the teacher runs with batch statistics (the original); 'eval':
    # running statistics, which then also follow the student by EMA.
    teacher_bn_mode='train',
    # Teacher EMA: decay = min(1 - 1 / (iter + 1), ema_momentum).
    ema_momentum=0.99,
    # Remedies for training from scratch (0 = off, the paper's setting):
    # supervised-only iterations, then a linear ramp of the unsup weight.
    warmup_iters=0,
    rampup_iters=0,
    # Where the per-pixel AEL work (teacher softmax, bank statistics, the
    # unsupervised loss) happens: 'input' = logits upsampled to the crop, as
    # the original; 'logits' = the decode head's output grid (1/4 of the crop
    # for DeepLabV3+, 16x fewer pixels), labels and pseudo-labels resized by
    # nearest neighbour. The supervised loss is the head's own either way.
    loss_resolution='input',
    # A NaN/inf loss: 'raise' leaves it to FiniteLossHook, which stops the run
    # (no extra device sync); 'skip' drops the step with a warning, which
    # costs one host read of the losses per step, before the update.
    nonfinite_loss='raise',
)
SEMI_TEST_DEFAULTS = dict(predict_on='teacher')
ROLES = ('sup', 'sup_paste', 'unsup', 'unsup_source')


def _checked_cfg(cfg: OptConfigType, defaults: dict, name: str) -> dict:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise KeyError(f'AELSegmentor: unknown {name} option(s) {unknown}; '
                       f'valid options are {sorted(defaults)}')
    return {**defaults, **cfg}


def _without_pretrained_weights(segmentor: ConfigType) -> ConfigType:
    """A copy of a segmentor config that loads no pretrained weights.

    For the teacher: it starts as a copy of the (pretrained) student
    (:meth:`AELSegmentor.init_weights`), so loading the weights a second time
    would only cost time. Removes the segmentor's ``pretrained`` and a
    backbone's ``pretrained`` / ``init_cfg=dict(type='Pretrained')``.
    """
    cfg = copy.deepcopy(segmentor)
    cfg.pop('pretrained', None)
    backbone = cfg.get('backbone')
    if isinstance(backbone, dict):
        if backbone.get('pretrained') is not None:
            backbone['pretrained'] = None
        init_cfg = backbone.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            backbone['init_cfg'] = None
    return cfg


@MODELS.register_module()
class AELSegmentor(BaseSegmentor):
    """Adaptive Equalization Learning (Hu et al., NeurIPS 2021).

    Wraps any :class:`EncoderDecoder` config as the student and builds the
    teacher from the same config. One training step takes one batch whose
    samples carry an ``ael_role`` (see :class:`SemiSegDataset`):

    * ``sup``: labeled images; ``sup_paste``: a second labeled image per
      ``sup`` sample, with its own jitter, the source of Adaptive Copy-Paste;
    * ``unsup``: unlabeled CutMix targets; ``unsup_source``: as many
      unlabeled images, the CutMix sources, each chosen by the data sampler
      for an ACM class ``acm_class`` (Eq. 9; -1 for the plain CutMix baseline).

    The loss is ``sup + alpha * unsup`` where ``sup`` is the student's own
    decode/auxiliary head losses on the (copy-pasted) labeled images and
    ``unsup`` the :class:`AELWeightedCELoss` (Eq. 10-13) between the student
    on the mixed unlabeled images and the mixed teacher pseudo-labels (plus,
    as in the original code, between the student and the teacher on the
    labeled images). Student statistics for the confidence bank (Eq. 4) are
    staged for :class:`ConfidenceBankHook`; the teacher follows the student
    through :class:`TeacherEMAHook`.

    Every AEL part is switchable from the config: ``copy_paste=None`` turns
    ACP off, ``cutmix=dict(adaptive=False)`` makes ACM a plain CutMix,
    ``unsup_loss=dict(use_dynamic_reweighting=False,
    use_equalization_sampling=False)`` turns DR and AES off; all four off is
    the CutMix mean teacher baseline, and ``unsup_weight=0`` is supervised
    training.

    Args:
        segmentor (dict): Config of the student (and teacher) segmentor.
        confidence_bank (dict): Kwargs of :class:`ConfidenceBank`
            (``num_classes`` defaults to the decode head's).
        unsup_loss (dict): Config of the unsupervised loss.
        cutmix (dict, optional): Config of :class:`AdaptiveCutMix`.
        copy_paste (dict, optional): Config of :class:`AdaptiveCopyPaste`.
        semi_train_cfg (dict, optional): See ``SEMI_TRAIN_DEFAULTS``.
        semi_test_cfg (dict, optional): ``predict_on`` 'teacher' or 'student'.
        data_preprocessor (dict, optional): Applied to the whole batch.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 unsup_loss: ConfigType = dict(type='AELWeightedCELoss'),
                 confidence_bank: OptConfigType = None,
                 cutmix: OptConfigType = dict(type='AdaptiveCutMix'),
                 copy_paste: OptConfigType = None,
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.semi_train_cfg = _checked_cfg(semi_train_cfg, SEMI_TRAIN_DEFAULTS,
                                           'semi_train_cfg')
        self.semi_test_cfg = _checked_cfg(semi_test_cfg, SEMI_TEST_DEFAULTS, 'semi_test_cfg')
        self._check_options()

        segmentor = copy.deepcopy(segmentor)
        # The batch is normalised once, by this model's data preprocessor.
        segmentor['data_preprocessor'] = None
        # Copied before the student is built: EncoderDecoder writes `pretrained`
        # into the backbone dict it is given.
        teacher_cfg = _without_pretrained_weights(segmentor)
        self.student = MODELS.build(segmentor)
        self.teacher = MODELS.build(teacher_cfg)
        if not isinstance(self.student, EncoderDecoder) or isinstance(
                self.student.decode_head, nn.ModuleList):
            raise TypeError('AELSegmentor: `segmentor` must build an EncoderDecoder with a '
                            f'single decode head, got {type(self.student).__name__}')
        self.teacher.requires_grad_(False)
        self._teacher_ran_in_train_mode = False
        self.num_classes = self.student.decode_head.num_classes
        self.ignore_index = self.student.decode_head.ignore_index

        bank_cfg = dict(confidence_bank or {})
        bank_num_classes = bank_cfg.pop('num_classes', self.num_classes)
        if bank_num_classes != self.num_classes:
            raise ValueError(f'AELSegmentor: confidence_bank.num_classes={bank_num_classes} '
                             f'but the decode head has num_classes={self.num_classes}')
        self.confidence_bank = ConfidenceBank(self.num_classes, **bank_cfg)
        self.unsup_loss = MODELS.build(unsup_loss)
        self.cutmix = self._build_part(cutmix, 'cutmix')
        self.copy_paste = self._build_part(copy_paste, 'copy_paste')

    # ------------------------------------------------------------------ setup
    def _check_options(self) -> None:
        cfg = self.semi_train_cfg
        if cfg['unsup_weight'] < 0:
            raise ValueError(f"semi_train_cfg.unsup_weight must be >= 0, got {cfg['unsup_weight']}")
        if not 0.0 <= cfg['pseudo_label_thresh'] <= 1.0:
            raise ValueError('semi_train_cfg.pseudo_label_thresh must be in [0, 1], got '
                             f"{cfg['pseudo_label_thresh']}")
        if cfg['teacher_bn_mode'] not in ('train', 'eval'):
            raise ValueError("semi_train_cfg.teacher_bn_mode must be 'train' or 'eval', got "
                             f"{cfg['teacher_bn_mode']!r}")
        if not 0.0 <= cfg['ema_momentum'] <= 1.0:
            raise ValueError('semi_train_cfg.ema_momentum must be in [0, 1], got '
                             f"{cfg['ema_momentum']}")
        for key in ('warmup_iters', 'rampup_iters'):
            if int(cfg[key]) != cfg[key] or cfg[key] < 0:
                raise ValueError(f'semi_train_cfg.{key} must be an int >= 0, got {cfg[key]}')
        if cfg['loss_resolution'] not in ('input', 'logits'):
            raise ValueError("semi_train_cfg.loss_resolution must be 'input' or 'logits', got "
                             f"{cfg['loss_resolution']!r}")
        if cfg['nonfinite_loss'] not in ('raise', 'skip'):
            raise ValueError("semi_train_cfg.nonfinite_loss must be 'raise' or 'skip', got "
                             f"{cfg['nonfinite_loss']!r}")
        if cfg['nonfinite_loss'] == 'skip' and dist.get_world_size() > 1:
            # DDP's train_step bypasses ours, and every rank would have to agree.
            raise ValueError("semi_train_cfg.nonfinite_loss='skip' works in single-process "
                             "training only; use 'raise' (FiniteLossHook) with several "
                             'processes')
        if self.semi_test_cfg['predict_on'] not in ('teacher', 'student'):
            raise ValueError("semi_test_cfg.predict_on must be 'teacher' or 'student', got "
                             f"{self.semi_test_cfg['predict_on']!r}")

    def _build_part(self, cfg: OptConfigType, name: str) -> Optional[nn.Module]:
        if cfg is None:
            return None
        cfg = dict(cfg)
        num_classes = cfg.setdefault('num_classes', self.num_classes)
        if num_classes != self.num_classes:
            raise ValueError(f'AELSegmentor: {name}.num_classes={num_classes} but the decode '
                             f'head has num_classes={self.num_classes}')
        cfg.setdefault('ignore_index', self.ignore_index)
        return MODELS.build(cfg)

    def train(self, mode: bool = True) -> 'AELSegmentor':
        """Keep the teacher in the configured BN mode; the loop calls train()."""
        super().train(mode)
        if mode and self.semi_train_cfg['teacher_bn_mode'] == 'eval':
            self.teacher.eval()
        return self

    def init_weights(self) -> None:
        """Initialise the student (loading its pretrained weights), then copy it to the teacher.

        The teacher starts as the student's copy of the pretrained network, as
        the mean teacher needs; its own config loads no weights.
        """
        super().init_weights()
        self.copy_student_to_teacher()

    # ----------------------------------------------------------- teacher EMA
    def ema_decay(self, iteration: int) -> float:
        """Teacher EMA decay ``min(1 - 1/(iter + 1), m)`` of the original code."""
        return min(1.0 - 1.0 / (iteration + 1), self.semi_train_cfg['ema_momentum'])

    @torch.no_grad()
    def update_teacher(self, iteration: int) -> None:
        """``teacher <- d * teacher + (1 - d) * student``, d = :meth:`ema_decay`.

        Parameters always (the original). Floating buffers (BN statistics)
        too when the teacher did not run in train mode this step: in
        ``teacher_bn_mode='eval'``, during the supervised warm-up and in
        supervised-only runs; otherwise the teacher's BN statistics are its
        own, from its train-mode forward passes (the original).
        """
        weight = 1.0 - self.ema_decay(iteration)
        pairs = [(t, s) for t, s in zip(self.teacher.parameters(), self.student.parameters())]
        own_statistics = self._teacher_ran_in_train_mode
        self._teacher_ran_in_train_mode = False
        if not own_statistics:
            pairs += [(t, s) for t, s in zip(self.teacher.buffers(), self.student.buffers())
                      if t.dtype.is_floating_point]
        teacher_tensors = [t.data for t, _ in pairs]
        student_tensors = [s.data.to(t.dtype) for t, s in pairs]
        # One fused kernel launch per dtype/device group, no host sync.
        torch._foreach_lerp_(teacher_tensors, student_tensors, weight)

    @torch.no_grad()
    def copy_student_to_teacher(self) -> None:
        self.teacher.load_state_dict(self.student.state_dict())

    # ------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper) -> Dict[str, Tensor]:
        """mmengine's step; with ``nonfinite_loss='skip'`` a NaN/inf loss skips the update.

        A skipped step changes no parameter and no BN statistic (they are
        restored), discards the bank statistics and presence rows it staged,
        logs a warning naming the iteration and the non-finite losses, and
        returns only the finite log values. Not with gradient accumulation.
        """
        if self.semi_train_cfg['nonfinite_loss'] != 'skip':
            return super().train_step(data, optim_wrapper)
        if getattr(optim_wrapper, '_accumulative_counts', 1) > 1:
            raise ValueError("semi_train_cfg.nonfinite_loss='skip' cannot be combined with "
                             'optim_wrapper.accumulative_counts > 1 (a skipped step would shift '
                             "the accumulation window); use 'raise'")
        # The forward updates BN running statistics: keep them to roll back.
        buffers = [b for b in self.buffers() if b.dtype.is_floating_point]
        saved = [b.clone() for b in buffers]
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        values = torch.stack([v.detach().float().reshape(()) for v in log_vars.values()])
        finite = torch.isfinite(values).tolist()  # the one host read this mode costs
        if all(finite):
            optim_wrapper.update_params(parsed_losses)
            return log_vars
        bad = ', '.join(f'{key}={value:g}' for (key, ok), value in
                        zip(zip(log_vars, finite), values.tolist()) if not ok)
        iteration = MessageHub.get_current_instance().get_info('iter', 0) + 1
        print_log(f'AELSegmentor: non-finite loss at iteration {iteration}: {bad}; skipping '
                  'this step (no parameter update, no bank update)', logger='current',
                  level=30)
        optim_wrapper.zero_grad()
        torch._foreach_copy_(buffers, saved)
        self.confidence_bank.pop_pending()
        if self.cutmix is not None and hasattr(self.cutmix, 'pending_presence'):
            self.cutmix.pending_presence = None
        return {key: value for (key, value), ok in zip(log_vars.items(), finite) if ok}

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Supervised and unsupervised AEL losses of one step.

        Args:
            inputs (Tensor): (N, 3, H, W) the whole normalised batch.
            data_samples (list[SegDataSample]): Each with an ``ael_role``.

        Returns:
            dict[str, Tensor]: ``sup.*`` student losses and ``unsup.*`` AEL
            losses (already weighted by alpha and the warm-up schedule).
        """
        groups = self._split_roles(inputs, data_samples)
        sup_inputs, sup_samples = groups['sup']
        gt_seg = torch.stack([s.gt_sem_seg.data[0] for s in sup_samples]).long()
        if self.copy_paste is not None:
            paste_inputs, paste_samples = groups['sup_paste']
            paste_seg = torch.stack([s.gt_sem_seg.data[0] for s in paste_samples]).long()
            sup_inputs, gt_seg, _ = self.copy_paste(sup_inputs, gt_seg, paste_inputs, paste_seg,
                                                    self.confidence_bank.confidence)
            for sample, seg in zip(sup_samples, gt_seg):
                sample.gt_sem_seg.data = seg[None]

        weight = self.unsup_weight_now()
        with_unsup = weight > 0 and 'unsup' in groups
        mixed = self._mixed_unlabeled(groups, sup_inputs) if with_unsup else None
        # One student pass over labeled and mixed images: half the launches of
        # two passes, and BN never sees a batch of one mixed image.
        student_inputs = sup_inputs if mixed is None else torch.cat([sup_inputs, mixed[0]])
        feats = self.student.extract_feat(student_inputs)
        logits = self.student.decode_head(feats)
        num_sup = sup_inputs.shape[0]
        sup_logits = logits[:num_sup]
        losses = add_prefix(self.student.decode_head.loss_by_feat(sup_logits, sup_samples),
                            'sup.decode')
        if self.student.with_auxiliary_head:
            sup_feats = [f[:num_sup] for f in feats] if mixed is not None else feats
            losses.update(add_prefix(
                self.student._auxiliary_head_forward_train(sup_feats, sup_samples), 'sup'))
        if self.semi_train_cfg['loss_resolution'] == 'input':
            logits = resize(logits, size=gt_seg.shape[-2:], mode='bilinear',
                            align_corners=self.student.align_corners)
        else:
            gt_seg = self._nearest(gt_seg, logits.shape[-2:])
            if mixed is not None:
                mixed = tuple(mixed[:1]) + tuple(self._nearest(t, logits.shape[-2:])
                                                 for t in mixed[1:])
        self.confidence_bank.stage(*self.confidence_bank.batch_statistics(
            logits[:num_sup], gt_seg, self.ignore_index))
        if mixed is not None:
            losses.update(self._unsup_losses(logits, num_sup, mixed, weight))
        return losses

    @staticmethod
    def _nearest(tensor: Tensor, size) -> Tensor:
        """(N, H, W) label-like map resized by nearest neighbour (no mixing of ids)."""
        if tuple(tensor.shape[-2:]) == tuple(size):
            return tensor
        return F.interpolate(tensor[:, None].float(), size=tuple(size),
                             mode='nearest')[:, 0].to(tensor.dtype)

    def unsup_weight_now(self) -> float:
        """alpha times the warm-up / ramp-up factor at the current iteration."""
        cfg = self.semi_train_cfg
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        if iteration < cfg['warmup_iters']:
            return 0.0
        ramp = 1.0
        if cfg['rampup_iters'] > 0:
            ramp = min(1.0, (iteration - cfg['warmup_iters'] + 1) / cfg['rampup_iters'])
        return cfg['unsup_weight'] * ramp

    @torch.no_grad()
    def _mixed_unlabeled(self, groups: dict, sup_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Teacher pseudo-labels, ACM presence rows and the CutMix/ACM mix (Eq. 9).

        Returns:
            tuple[Tensor]: mixed images (P, 3, H, W), their pseudo-labels and
            confidences (P, H, W), and, when ``unsup_on_labeled``, the
            teacher's pseudo-labels and confidences on the labeled crops.
        """
        target_inputs, target_samples = groups['unsup']
        source_inputs, source_samples = groups.get('unsup_source', (None, None))
        if source_inputs is None or source_inputs.shape[0] != target_inputs.shape[0]:
            raise ValueError('AELSegmentor: each `unsup` sample needs one `unsup_source` sample '
                             '(check SemiSegSampler num_unlabeled)')
        if self.cutmix is None:
            raise ValueError('AELSegmentor: the unsupervised branch needs `cutmix` '
                             '(use adaptive=False for plain CutMix)')
        num_pairs = target_inputs.shape[0]
        use_labeled = self.semi_train_cfg['unsup_on_labeled']
        teacher_inputs = [target_inputs, source_inputs] + ([sup_inputs] if use_labeled else [])
        pred, conf = self.pseudo_labels(torch.cat(teacher_inputs))
        unlabeled_pred = pred[:2 * num_pairs]
        self._stage_presence(unlabeled_pred, target_samples + source_samples)
        classes = torch.tensor([s.metainfo.get('acm_class', -1) for s in source_samples],
                               dtype=torch.long).to(pred.device, non_blocking=True)
        mixed_inputs, mixed_pred, mixed_conf, _ = self.cutmix(
            target_inputs, source_inputs, unlabeled_pred[:num_pairs],
            unlabeled_pred[num_pairs:], conf[:num_pairs], conf[num_pairs:2 * num_pairs],
            classes)
        labeled = (pred[2 * num_pairs:], conf[2 * num_pairs:]) if use_labeled else ()
        return (mixed_inputs, mixed_pred, mixed_conf, *labeled)

    def _unsup_losses(self, logits: Tensor, num_sup: int, mixed: Tuple[Tensor, ...],
                      weight: float) -> Dict[str, Tensor]:
        """AEL loss (Eq. 10-13) on the mixed images and, optionally, labeled crops."""
        rates = self.confidence_bank.aes_rates(self.unsup_loss.beta)
        _, mixed_pred, mixed_conf = mixed[:3]
        losses = {'unsup.loss_ael': weight * self.unsup_loss(
            logits[num_sup:], self._thresholded(mixed_pred, mixed_conf), mixed_conf, rates)}
        if len(mixed) == 5:
            labeled_pred, labeled_conf = mixed[3:]
            losses['unsup.loss_ael_labeled'] = weight * self.unsup_loss(
                logits[:num_sup], self._thresholded(labeled_pred, labeled_conf), labeled_conf,
                rates)
        return losses

    @torch.no_grad()
    def pseudo_labels(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Teacher prediction aligned with ``inputs`` (not un-flipped/resized).

        Returns:
            tuple[Tensor, Tensor]: (N, H, W) long argmax and (N, H, W) float32
            max probability.
        """
        self._teacher_ran_in_train_mode = self.teacher.training
        logits = self.teacher.decode_head(self.teacher.extract_feat(inputs))
        if self.semi_train_cfg['loss_resolution'] == 'logits':
            # Softmax on the head's grid, then nearest to the crop for ACM.
            conf, pred = F.softmax(logits.float(), dim=1).max(dim=1)
            return (self._nearest(pred, inputs.shape[-2:]),
                    self._nearest(conf, inputs.shape[-2:]))
        logits = resize(logits, size=inputs.shape[-2:], mode='bilinear',
                        align_corners=self.teacher.align_corners)
        conf, pred = F.softmax(logits.float(), dim=1).max(dim=1)
        return pred, conf

    def _thresholded(self, pred: Tensor, conf: Tensor) -> Tensor:
        thresh = self.semi_train_cfg['pseudo_label_thresh']
        if thresh <= 0:
            return pred
        return pred.masked_fill(conf < thresh, self.ignore_index)

    def _stage_presence(self, pred: Tensor, samples: SampleList) -> None:
        if not hasattr(self.cutmix, 'compute_presence'):
            return
        indices = [s.metainfo.get('sample_idx', -1) for s in samples]
        if min(indices) < 0:
            raise KeyError('AELSegmentor: unlabeled samples need `sample_idx` (their index in '
                           'the unlabeled set) for the ACM presence table; use SemiSegDataset')
        sample_idx = torch.tensor(indices, dtype=torch.long).to(pred.device, non_blocking=True)
        self.cutmix.pending_presence = (sample_idx, self.cutmix.compute_presence(pred))

    def _split_roles(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tuple[Tensor, SampleList]]:
        roles = [s.metainfo.get('ael_role') for s in data_samples]
        unknown = sorted({str(r) for r in roles} - set(ROLES))
        if unknown:
            raise KeyError(f'AELSegmentor: samples with ael_role {unknown}; expected one of '
                           f'{list(ROLES)}. Train with SemiSegDataset + SemiSegSampler so every '
                           'sample says whether it is labeled or unlabeled.')
        groups = {}
        for role in ROLES:
            index = [i for i, r in enumerate(roles) if r == role]
            if not index:
                continue
            # The sampler emits each role as one contiguous run: slice, no copy.
            if index != list(range(index[0], index[0] + len(index))):
                raise ValueError(f'AELSegmentor: samples of role {role!r} are not contiguous '
                                 'in the batch; use SemiSegSampler')
            groups[role] = (inputs[index[0]:index[-1] + 1], [data_samples[i] for i in index])
        if 'sup' not in groups:
            raise ValueError('AELSegmentor: the batch has no labeled (`sup`) sample')
        if self.copy_paste is not None and len(groups.get('sup_paste', ((), []))[1]) != len(
                groups['sup'][1]):
            raise ValueError('AELSegmentor: copy_paste is on, so each `sup` sample needs a '
                             '`sup_paste` sample (SemiSegDataset(paste_pipeline=...))')
        return groups

    # ---------------------------------------------------------- inference
    @property
    def predictor(self) -> BaseModel:
        return getattr(self, self.semi_test_cfg['predict_on'])

    def predict(self, inputs: Tensor, data_samples: SampleList = None) -> SampleList:
        return self.predictor.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: SampleList = None) -> Tensor:
        return self.predictor._forward(inputs, data_samples)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        return self.predictor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.predictor.encode_decode(inputs, batch_img_metas)

    # ------------------------------------------------------- checkpoints
    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Load a plain (non-AEL) segmentor checkpoint into student and teacher."""
        own = ('student.', 'teacher.', 'confidence_bank.', 'cutmix.', 'copy_paste.',
               'unsup_loss.')
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k[len(prefix):].startswith(own) for k in keys):
            print_log('AELSegmentor: loading a plain segmentor checkpoint into both the '
                      'student and the teacher', logger='current')
            for key in keys:
                value = state_dict.pop(key)
                name = key[len(prefix):]
                state_dict[f'{prefix}student.{name}'] = value
                state_dict[f'{prefix}teacher.{name}'] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
