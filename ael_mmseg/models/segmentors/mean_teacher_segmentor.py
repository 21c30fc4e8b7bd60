"""A student, its EMA teacher and the semi-supervised step they share.

The base of :class:`CutMixMeanTeacher` (the paper's baseline) and
:class:`AELSegmentor`, as mmdet's ``SemiBaseDetector`` is of its
teacher-student detectors.
"""
import copy
from typing import Dict, List, NamedTuple, Optional, Tuple

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

from ael_mmseg.utils import keyed_random as kr

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
    # Where the per-pixel unsupervised work (teacher softmax, bank statistics,
    # the unsupervised loss) happens: 'input' = logits upsampled to the crop,
    # as the original; 'logits' = the decode head's output grid (1/4 of the
    # crop for DeepLabV3+, 16x fewer pixels), labels and pseudo-labels resized
    # by nearest neighbour. The supervised loss is the head's own either way.
    loss_resolution='input',
    # A NaN/inf loss: 'raise' leaves it to FiniteLossHook, which stops the run
    # (no extra device sync); 'skip' drops the step with a warning, which
    # costs one host read of the losses per step, before the update.
    nonfinite_loss='raise',
)
SEMI_TEST_DEFAULTS = dict(predict_on='teacher')


class MixedBatch(NamedTuple):
    """The unlabeled side of one step: what the student learns from the teacher.

    ``inputs`` (P, 3, H, W) are the mixed images, ``pseudo_label`` /
    ``confidence`` (P, H, W) the teacher's argmax and max probability mixed
    with the same boxes; with ``unsup_on_labeled`` also the teacher's
    pseudo-labels and confidences (N, H, W) on the labeled crops.
    """
    inputs: Tensor
    pseudo_label: Tensor
    confidence: Tensor
    labeled_pseudo_label: Optional[Tensor] = None
    labeled_confidence: Optional[Tensor] = None


def nearest(tensor: Tensor, size) -> Tensor:
    """(N, H, W) label-like map resized by nearest neighbour (no mixing of ids)."""
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor[:, None].float(), size=tuple(size),
                         mode='nearest')[:, 0].to(tensor.dtype)


def checked_cfg(cfg: OptConfigType, defaults: dict, name: str, owner: str) -> dict:
    """``cfg`` over ``defaults``, refusing keys that ``defaults`` does not have."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise KeyError(f'{owner}: unknown {name} option(s) {unknown}; '
                       f'valid options are {sorted(defaults)}')
    return {**defaults, **cfg}


def without_pretrained_weights(segmentor: ConfigType) -> ConfigType:
    """A copy of a segmentor config that loads no pretrained weights.

    For the teacher: it starts as a copy of the (pretrained) student
    (:meth:`MeanTeacherSegmentor.init_weights`), so loading the weights a
    second time would only cost time. Removes the segmentor's ``pretrained``
    and a backbone's ``pretrained`` / ``init_cfg=dict(type='Pretrained')``.
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


class MeanTeacherSegmentor(BaseSegmentor):
    """Student + EMA teacher around any single-head :class:`EncoderDecoder` config.

    Owns what every mean-teacher method shares: building the student and a
    teacher that loads no weights of its own (:meth:`init_weights` copies the
    pretrained student into it), the teacher EMA (:meth:`update_teacher`,
    driven by :class:`AELHook`), the teacher's pseudo-labels, the
    warm-up / ramp-up of the unsupervised weight, the non-finite-loss policy,
    prediction with the teacher or the student, and loading a plain segmentor
    checkpoint into both.

    One training step (:meth:`loss`) takes one batch whose samples carry an
    ``ael_role`` (:class:`SemiSegDataset`): ``sup`` labeled images, ``unsup``
    unlabeled CutMix targets and as many ``unsup_source`` CutMix sources. The
    student runs once over the labeled and the mixed unlabeled images; the
    loss is ``sup + alpha * unsup``. Subclasses say how the pairs are mixed
    (:meth:`mix_pairs`) and may change the labeled images
    (:meth:`augment_labeled`), watch the student on them
    (:meth:`observe_labeled`) and pass extra arguments to the unsupervised
    loss (:meth:`unsup_loss_kwargs`).

    Args:
        segmentor (dict): Config of the student (and teacher) segmentor.
        unsup_loss (dict): Config of the loss between the student and the
            teacher's pseudo-labels, called as
            ``loss(logits, pseudo_label, confidence, **unsup_loss_kwargs())``;
            logged as ``unsup.<loss_name>`` (and ``..._labeled``).
        semi_train_cfg (dict, optional): See ``SEMI_TRAIN_DEFAULTS``.
        semi_test_cfg (dict, optional): ``predict_on`` 'teacher' or 'student'.
        data_preprocessor (dict, optional): Applied to the whole batch.
        init_cfg (dict, optional): Initialisation config.
    """

    # Sample roles this model trains on (SemiSegDataset's ``ael_role``).
    roles: Tuple[str, ...] = ('sup', 'unsup', 'unsup_source')

    def __init__(self,
                 segmentor: ConfigType,
                 unsup_loss: ConfigType,
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name = type(self).__name__
        self.semi_train_cfg = checked_cfg(semi_train_cfg, SEMI_TRAIN_DEFAULTS, 'semi_train_cfg',
                                          name)
        self.semi_test_cfg = checked_cfg(semi_test_cfg, SEMI_TEST_DEFAULTS, 'semi_test_cfg', name)
        self._check_options()

        segmentor = copy.deepcopy(segmentor)
        # The batch is normalised once, by this model's data preprocessor.
        segmentor['data_preprocessor'] = None
        # Copied before the student is built: EncoderDecoder writes `pretrained`
        # into the backbone dict it is given.
        teacher_cfg = without_pretrained_weights(segmentor)
        self.student = MODELS.build(segmentor)
        self.teacher = MODELS.build(teacher_cfg)
        if not isinstance(self.student, EncoderDecoder) or isinstance(
                self.student.decode_head, nn.ModuleList):
            raise TypeError(f'{name}: `segmentor` must build an EncoderDecoder with a single '
                            f'decode head, got {type(self.student).__name__}')
        self.teacher.requires_grad_(False)
        # Whether the teacher ran in train mode (its own BN statistics) since
        # the last EMA update; read and reset by update_teacher.
        self._teacher_ran_in_train_mode = False
        self.num_classes = self.student.decode_head.num_classes
        self.ignore_index = self.student.decode_head.ignore_index
        self.unsup_loss = MODELS.build(unsup_loss)
        # Key of the model's random draws (ael_mmseg.utils.keyed_random): the
        # run's seed, set by AELHook; the iteration and forward of the draw.
        self.key_seed = 0
        self._key_step = (-1, -1)  # (iteration, forward within it)

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

    def train(self, mode: bool = True) -> 'MeanTeacherSegmentor':
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

    # ------------------------------------------------------- keyed draws
    def set_key_seed(self, seed: int) -> None:
        """The seed of every keyed draw of the model (``AELHook`` passes the sampler's)."""
        self.key_seed = int(seed)

    def _next_forward_key(self) -> None:
        """Start the keys of one forward: (iteration, how many forwards it had before)."""
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        previous, count = self._key_step
        self._key_step = (iteration, count + 1 if previous == iteration else 0)

    def step_generator(self, device: torch.device, slot: int) -> torch.Generator:
        """A generator on ``device`` for draw ``slot`` of this forward.

        Seeded host-side from ``(key_seed, MODEL, rank, iteration, forward,
        slot)``: the same draws in an uninterrupted and a resumed run, other
        draws on every rank, independent of anything else that draws.
        """
        iteration, forward = self._key_step
        return kr.keyed_torch(device, self.key_seed, kr.MODEL, dist.get_rank(),
                              max(iteration, 0), max(forward, 0), slot)

    # ------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper) -> Dict[str, Tensor]:
        """mmengine's step; with ``nonfinite_loss='skip'`` a NaN/inf loss skips the update.

        A skipped step changes no parameter and no BN statistic (they are
        restored), discards what the step staged (:meth:`discard_step`), logs
        a warning naming the iteration and the non-finite losses, and returns
        only the finite log values. Not with gradient accumulation.
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
        print_log(f'{type(self).__name__}: non-finite loss at iteration {iteration}: {bad}; '
                  'skipping this step (no parameter update, no bank update)', logger='current',
                  level=30)
        optim_wrapper.zero_grad()
        torch._foreach_copy_(buffers, saved)
        self.discard_step()
        return {key: value for (key, value), ok in zip(log_vars.items(), finite) if ok}

    def discard_step(self) -> None:
        """Forget what this step staged for after the update (nothing here)."""

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Supervised and unsupervised losses of one step.

        Args:
            inputs (Tensor): (N, 3, H, W) the whole normalised batch.
            data_samples (list[SegDataSample]): Each with an ``ael_role``.

        Returns:
            dict[str, Tensor]: ``sup.*`` student losses and ``unsup.*`` losses
            (already weighted by alpha and the warm-up schedule).
        """
        self._next_forward_key()
        groups = self.split_roles(inputs, data_samples)
        sup_inputs, sup_samples = groups['sup']
        gt_seg = torch.stack([s.gt_sem_seg.data[0] for s in sup_samples]).long()
        sup_inputs, gt_seg = self.augment_labeled(sup_inputs, gt_seg, groups)

        weight = self.unsup_weight_now()
        mixed = self.mix_unlabeled(groups, sup_inputs) if weight > 0 and 'unsup' in groups \
            else None
        # One student pass over labeled and mixed images: half the launches of
        # two passes, and BN never sees a batch of one mixed image.
        student_inputs = sup_inputs if mixed is None else torch.cat([sup_inputs, mixed.inputs])
        feats = self.student.extract_feat(student_inputs)
        logits = self.student.decode_head(feats)
        num_sup = sup_inputs.shape[0]
        losses = add_prefix(self.student.decode_head.loss_by_feat(logits[:num_sup], sup_samples),
                            'sup.decode')
        if self.student.with_auxiliary_head:
            sup_feats = [f[:num_sup] for f in feats] if mixed is not None else feats
            losses.update(add_prefix(
                self.student._auxiliary_head_forward_train(sup_feats, sup_samples), 'sup'))
        if self.semi_train_cfg['loss_resolution'] == 'input':
            logits = resize(logits, size=gt_seg.shape[-2:], mode='bilinear',
                            align_corners=self.student.align_corners)
        else:
            size = logits.shape[-2:]
            gt_seg = nearest(gt_seg, size)
            if mixed is not None:
                mixed = MixedBatch(mixed.inputs, *(None if t is None else nearest(t, size)
                                                   for t in mixed[1:]))
        self.observe_labeled(logits[:num_sup], gt_seg)
        if mixed is not None:
            losses.update(self.unsup_losses(logits, num_sup, mixed, weight))
        return losses

    def augment_labeled(self, inputs: Tensor, gt_seg: Tensor,
                        groups: Dict[str, Tuple[Tensor, SampleList]]) -> Tuple[Tensor, Tensor]:
        """The labeled images and labels the student trains on (unchanged here).

        A subclass that changes the labels also writes them into the ``sup``
        samples, whose ``gt_sem_seg`` the decode head's loss reads.
        """
        return inputs, gt_seg

    def observe_labeled(self, logits: Tensor, gt_seg: Tensor) -> None:
        """See the student's logits on the labeled images (nothing here).

        Args:
            logits (Tensor): (N, C, h, w) at the loss resolution, with grad.
            gt_seg (Tensor): (N, h, w) labels at the same resolution.
        """

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
    def mix_unlabeled(self, groups: Dict[str, Tuple[Tensor, SampleList]],
                      sup_inputs: Tensor) -> MixedBatch:
        """The teacher's pseudo-labels, mixed by :meth:`mix_pairs`.

        One teacher pass over targets, sources and, with ``unsup_on_labeled``,
        the labeled crops.
        """
        target_inputs, target_samples = groups['unsup']
        source_inputs, source_samples = groups.get('unsup_source', (None, None))
        if source_inputs is None or source_inputs.shape[0] != target_inputs.shape[0]:
            raise ValueError(f'{type(self).__name__}: each `unsup` sample needs one '
                             '`unsup_source` sample (check SemiSegSampler num_unlabeled)')
        num_pairs = target_inputs.shape[0]
        use_labeled = self.semi_train_cfg['unsup_on_labeled']
        teacher_inputs = [target_inputs, source_inputs] + ([sup_inputs] if use_labeled else [])
        pred, conf = self.pseudo_labels(torch.cat(teacher_inputs))
        mixed_inputs, mixed_pred, mixed_conf = self.mix_pairs(
            target_inputs, source_inputs, pred[:num_pairs], pred[num_pairs:2 * num_pairs],
            conf[:num_pairs], conf[num_pairs:2 * num_pairs], target_samples, source_samples)
        if not use_labeled:
            return MixedBatch(mixed_inputs, mixed_pred, mixed_conf)
        return MixedBatch(mixed_inputs, mixed_pred, mixed_conf, pred[2 * num_pairs:],
                          conf[2 * num_pairs:])

    def mix_pairs(self, target_inputs: Tensor, source_inputs: Tensor, target_pred: Tensor,
                  source_pred: Tensor, target_conf: Tensor, source_conf: Tensor,
                  target_samples: SampleList,
                  source_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """Mix each source into its target: images, pseudo-labels, confidences."""
        raise NotImplementedError

    def unsup_loss_kwargs(self, slot: int, device: torch.device) -> dict:
        """Extra keyword arguments of one unsupervised loss call.

        Args:
            slot (int): ``keyed_random.SLOT_AES_MIXED`` (the mixed images) or
                ``SLOT_AES_LABELED`` (the labeled crops).
            device (torch.device): The logits' device.
        """
        return {}

    def unsup_losses(self, logits: Tensor, num_sup: int, mixed: MixedBatch,
                     weight: float) -> Dict[str, Tensor]:
        """The unsupervised loss on the mixed images and, optionally, the labeled crops."""
        name = f'unsup.{self.unsup_loss.loss_name}'
        losses = {name: weight * self.unsup_loss(
            logits[num_sup:], self.threshold_pseudo_labels(mixed.pseudo_label, mixed.confidence),
            mixed.confidence, **self.unsup_loss_kwargs(kr.SLOT_AES_MIXED, logits.device))}
        if mixed.labeled_pseudo_label is not None:
            losses[f'{name}_labeled'] = weight * self.unsup_loss(
                logits[:num_sup], self.threshold_pseudo_labels(mixed.labeled_pseudo_label,
                                                               mixed.labeled_confidence),
                mixed.labeled_confidence,
                **self.unsup_loss_kwargs(kr.SLOT_AES_LABELED, logits.device))
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
            # Softmax on the head's grid, then nearest to the crop for mixing.
            conf, pred = F.softmax(logits.float(), dim=1).max(dim=1)
            return nearest(pred, inputs.shape[-2:]), nearest(conf, inputs.shape[-2:])
        logits = resize(logits, size=inputs.shape[-2:], mode='bilinear',
                        align_corners=self.teacher.align_corners)
        conf, pred = F.softmax(logits.float(), dim=1).max(dim=1)
        return pred, conf

    def threshold_pseudo_labels(self, pred: Tensor, conf: Tensor) -> Tensor:
        """Pseudo-labels with ``ignore_index`` where the teacher's confidence < the threshold."""
        thresh = self.semi_train_cfg['pseudo_label_thresh']
        if thresh <= 0:
            return pred
        return pred.masked_fill(conf < thresh, self.ignore_index)

    def split_roles(self, inputs: Tensor,
                    data_samples: SampleList) -> Dict[str, Tuple[Tensor, SampleList]]:
        """The batch's images and samples by ``ael_role`` (contiguous runs, sliced)."""
        name = type(self).__name__
        roles = [s.metainfo.get('ael_role') for s in data_samples]
        unknown = sorted({str(r) for r in roles} - set(self.roles))
        if 'sup_paste' in unknown:
            raise KeyError(f'{name}: the batch has copy-paste sources (`sup_paste` samples) '
                           'but this model does not paste; set '
                           'train_dataloader.dataset.paste_pipeline=None')
        if unknown:
            raise KeyError(f'{name}: samples with ael_role {unknown}; expected one of '
                           f'{list(self.roles)}. Train with SemiSegDataset + SemiSegSampler so '
                           'every sample says whether it is labeled or unlabeled.')
        groups = {}
        for role in self.roles:
            index = [i for i, r in enumerate(roles) if r == role]
            if not index:
                continue
            # The sampler emits each role as one contiguous run: slice, no copy.
            if index != list(range(index[0], index[0] + len(index))):
                raise ValueError(f'{name}: samples of role {role!r} are not contiguous in the '
                                 'batch; use SemiSegSampler')
            groups[role] = (inputs[index[0]:index[-1] + 1], [data_samples[i] for i in index])
        if 'sup' not in groups:
            raise ValueError(f'{name}: the batch has no labeled (`sup`) sample')
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
        """Load a plain (non-mean-teacher) segmentor checkpoint into student and teacher."""
        own = tuple(f'{name}.' for name in self._modules if name != 'data_preprocessor')
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k[len(prefix):].startswith(own) for k in keys):
            print_log(f'{type(self).__name__}: loading a plain segmentor checkpoint into both '
                      'the student and the teacher', logger='current')
            for key in keys:
                value = state_dict.pop(key)
                name = key[len(prefix):]
                state_dict[f'{prefix}student.{name}'] = value
                state_dict[f'{prefix}teacher.{name}'] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
