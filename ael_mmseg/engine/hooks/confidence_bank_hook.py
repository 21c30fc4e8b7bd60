"""Keeps AEL's confidence bank and ACM presence table, identical on all ranks."""
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine import dist
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ael_mmseg.utils.rng_state import get_data_rng_state, get_torch_rng_state, set_torch_rng_state

WARNING = 30  # logging.WARNING


@HOOKS.register_module()
class ConfidenceBankHook(Hook):
    """Updates, synchronises and logs the confidence bank (Eq. 4, 7).

    After every training iteration it all-reduces the per-class sums and
    pixel counts that the segmentor staged (so the bank is the same on every
    rank and does not depend on how the batch is split across GPUs), applies
    the Eq. 7 update, gathers the ACM presence rows of all ranks' unlabeled
    images into the class x unlabeled-image table, and keeps CPU mirrors of
    both for the data sampler's ACM source choice. Every ``interval``
    iterations it writes per-class confidence and the ACM, ACP and AES
    sampling distributions as scalars to the visualizer backends
    (``ael/conf/<class>``, ``ael/acm_prob/<class>``, ``ael/acp_prob/<class>``,
    ``ael/aes_rate/<class>``).

    Exact resume: bank and table are model buffers, hence in every
    checkpoint. The hook adds ``ael_state`` to each checkpoint: every rank's
    torch random state (which drives AES, ACP and the CutMix boxes inside the
    model), captured right after the step the checkpoint follows and
    restored at the start of the next step -- in the resumed run and in the
    uninterrupted one alike, so validation or data loading in between cannot
    make them differ -- the data pipelines' numpy / Python random state of
    the same moment, and the data sampler's seed. On resume
    ``FastForwardIterBasedTrainLoop`` starts the sampler at the resumed step
    (``SemiSegSampler.skip_to``: every sampler draw uses a fixed amount of
    randomness, so its generators are advanced without loading images) and
    the sampler restores the pipelines' state before the first batch
    (mmengine's stock loop instead replays the trained batches, which
    restores both). Checkpoints are also written by hooks that declare it
    through ``will_save_checkpoint(runner)`` (``PreemptionCheckpointHook``).
    Resuming from a checkpoint without this state (an older run, a plain
    segmentor) works but logs a warning that names what restarts.

    Note: the data loader prefetches a few batches, so a source image is
    chosen from a bank up to ``num_workers * prefetch_factor`` steps old;
    with tau = 0.999 that is immaterial. With ``num_workers=0`` a resumed
    run repeats the uninterrupted one exactly. With worker processes it does
    not: the first few steps after a resume choose ACM sources from the
    resumed bank instead of that slightly older one, and the workers'
    augmentation random state (seeded when they start) is not in the
    checkpoint.

    Args:
        interval (int): Logging interval in iterations.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f'ConfidenceBankHook: interval must be >= 1, got {interval}')
        self.interval = interval
        self._confidence_cpu: Optional[torch.Tensor] = None
        self._presence_cpu: Optional[torch.Tensor] = None
        self._sampler = None
        # (iteration, state): torch RNG state to restore when that step starts.
        self._rng_resume: Optional[Tuple[int, Dict[str, Any]]] = None
        self._rank_rng_states: Optional[List[Dict[str, Any]]] = None
        self._loaded: Optional[Dict[str, Any]] = None

    # ---------------------------------------------------------------- setup
    def before_train(self, runner) -> None:
        model = self._model(runner)
        dataset = runner.train_dataloader.dataset
        self._class_names = list(dataset.metainfo.get('classes', ()))
        if len(self._class_names) != model.num_classes:
            raise ValueError(
                f'ConfidenceBankHook: the dataset has {len(self._class_names)} classes '
                f'({type(dataset).__name__}.metainfo.classes) but the model has '
                f'num_classes={model.num_classes}')
        sampler = getattr(runner.train_dataloader, 'sampler', None)
        if hasattr(sampler, 'source_selector'):
            self._check_batch_size(runner, sampler)
            self._sampler = sampler
            if self._rng_resume is not None and 'data' in self._rng_resume[1] and \
                    hasattr(sampler, 'resume_data_rng'):
                sampler.resume_data_rng(self._rng_resume[0], self._rng_resume[1]['data'])
        cutmix = model.cutmix
        if cutmix is not None and hasattr(cutmix, 'presence') and hasattr(dataset, 'unlabeled'):
            num_unlabeled = len(dataset.unlabeled)
            if cutmix.presence.shape[1] != num_unlabeled:
                if cutmix.presence.shape[1] > 0:
                    print_log(f'ConfidenceBankHook: the ACM presence table covers '
                              f'{cutmix.presence.shape[1]} images but the unlabeled set has '
                              f'{num_unlabeled}; starting a new table', logger='current',
                              level=30)
                cutmix.resize_presence(num_unlabeled)
        self._cutmix = cutmix
        # Host mirrors exist only for the sampler's adaptive ACM choice; without
        # it (supervised, plain CutMix) no per-step device-to-host copy is made.
        if self._sampler is not None and getattr(cutmix, 'adaptive', False) and \
                hasattr(cutmix, 'presence'):
            self._presence_cpu = cutmix.presence.detach().cpu().clone()
            self._confidence_cpu = model.confidence_bank.confidence.detach().cpu()
            self._sampler.source_selector = self.select_source
        self._warn_incomplete_resume(runner)

    def _warn_incomplete_resume(self, runner) -> None:
        """Say what a resume could not restore (called once training state is loaded)."""
        loaded, self._loaded = self._loaded, None
        if loaded is None or runner.iter == 0:
            return  # nothing loaded, or ``load_from`` weights for a new run
        where = f'resuming at iteration {runner.iter} from a checkpoint'
        if not loaded['has_bank']:
            print_log(f'ConfidenceBankHook: {where} without an AEL confidence bank (a non-AEL '
                      'or older checkpoint): the confidence bank and the ACM presence table '
                      'restart from their initial values', logger='current', level=WARNING)
        state = loaded['ael_state']
        if state is None:
            print_log(f'ConfidenceBankHook: {where} that has no "ael_state" (written before '
                      'ael_mmseg saved it): the random state of the AEL sampling is not '
                      'restored, so the run goes on but does not repeat an uninterrupted '
                      'run exactly', logger='current', level=WARNING)
            return
        if state.get('torch_rng') is None:
            print_log(f'ConfidenceBankHook: {where} saved outside the CheckpointHook interval '
                      '(e.g. a best checkpoint): the random state of the AEL sampling is not '
                      'restored, so the run does not repeat an uninterrupted run exactly',
                      logger='current', level=WARNING)
            return
        num_states = len(state['torch_rng'])
        if num_states != dist.get_world_size():
            print_log(f'ConfidenceBankHook: {where} saved by {num_states} process(es), now '
                      f'{dist.get_world_size()}: the random state of the AEL sampling is not '
                      'restored', logger='current', level=WARNING)
        seed = state.get('sampler_seed')
        if self._sampler is not None and seed is not None and seed != self._sampler.seed:
            print_log(f'ConfidenceBankHook: {where} whose data sampler seed was {seed}, but '
                      f'this run\'s is {self._sampler.seed}: the image order after the resume '
                      'differs from the original run (set `randomness.seed` in the config to '
                      'keep it)', logger='current', level=WARNING)

    @staticmethod
    def _check_batch_size(runner, sampler) -> None:
        batch_size = runner.train_dataloader.batch_size
        if batch_size != sampler.batch_size:
            raise ValueError(
                f'train_dataloader.batch_size={batch_size} but SemiSegSampler emits '
                f'{sampler.batch_size} samples per step (num_labeled={sampler.num_labeled}'
                f' x{2 if sampler.copy_paste else 1} + 2 x num_unlabeled='
                f'{sampler.num_unlabeled}); set batch_size={sampler.batch_size}')

    # ----------------------------------------------------------- every step
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._model(runner)
        pending = model.confidence_bank.pop_pending()
        if pending is not None:
            sums, counts = self._all_reduce(*pending)
            model.confidence_bank.update(sums, counts)
        cutmix = model.cutmix
        staged = getattr(cutmix, 'pending_presence', None)
        if staged is not None:
            cutmix.pending_presence = None
            sample_idx, presence = self._all_gather(*staged)
            written = cutmix.write_presence(sample_idx, presence)
            if self._presence_cpu is not None:
                # The merged rows: the mirror equals the table with repeated indices too.
                self._presence_cpu[:, sample_idx.cpu()] = written.cpu().t()
        if self._confidence_cpu is not None:
            self._confidence_cpu = model.confidence_bank.confidence.detach().cpu()
        if self.every_n_train_iters(runner, self.interval):
            self._log(runner, model)
        if self._checkpoint_due(runner):
            self._capture_resume_point(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._rng_resume is not None:
            iteration, state = self._rng_resume
            self._rng_resume = None
            if iteration == runner.iter:
                set_torch_rng_state(state)

    # ------------------------------------------------------- exact resume
    @staticmethod
    def _checkpoint_due(runner) -> bool:
        """Whether a checkpoint is saved after this iteration.

        By a CheckpointHook's own rule, or by a hook that says so through
        ``will_save_checkpoint(runner)`` (``PreemptionCheckpointHook``).
        """
        for hook in getattr(runner, 'hooks', ()):
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                    hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or
                    (hook.save_last and hook.is_last_train_iter(runner))):
                return True
            will_save = getattr(hook, 'will_save_checkpoint', None)
            if callable(will_save) and will_save(runner):
                return True
        return False

    def _capture_resume_point(self, runner) -> None:
        """Record every rank's RNG state for the checkpoint (all ranks take part)."""
        state = dict(get_torch_rng_state(), data=get_data_rng_state())
        self._rng_resume = (runner.iter + 1, state)
        if dist.get_world_size() > 1:
            self._rank_rng_states = dist.all_gather_object(state)
        else:
            self._rank_rng_states = [state]

    @staticmethod
    def _all_reduce(sums: torch.Tensor, counts: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if dist.get_world_size() == 1:
            return sums, counts
        packed = torch.stack([sums, counts])
        dist.all_reduce(packed, op='sum')
        return packed[0], packed[1]

    @staticmethod
    def _all_gather(sample_idx: torch.Tensor, presence: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if dist.get_world_size() == 1:
            return sample_idx, presence
        indices = torch.cat(dist.all_gather(sample_idx))
        rows = torch.cat(dist.all_gather(presence.to(torch.uint8))).bool()
        return indices, rows

    def select_source(self, generator: torch.Generator) -> Tuple[int, int]:
        """ACM source on the host from the CPU mirrors (Eq. 9, ``AdaptiveCutMix.sample_source``)."""
        return self._cutmix.sample_source(self._confidence_cpu, generator,
                                          presence=self._presence_cpu)

    # -------------------------------------------------------------- logging
    def _log(self, runner, model) -> None:
        bank = model.confidence_bank
        series = dict(conf=bank.confidence, acm_prob=bank.acm_probabilities(),
                      aes_rate=bank.aes_rates(getattr(model.unsup_loss, 'beta', 1.0)))
        if model.copy_paste is not None:
            series['acp_prob'] = model.copy_paste.class_probabilities(bank.confidence)
        scalars = {}
        for name, values in series.items():
            for class_name, value in zip(self._class_names, values.detach().cpu().tolist()):
                scalars[f'ael/{name}/{class_name}'] = value
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        conf = series['conf'].detach().cpu()
        worst = int(conf.argmin())
        runner.message_hub.update_scalar('train/ael_min_conf', float(conf[worst]))
        runner.message_hub.update_scalar('train/ael_mean_conf', float(conf.mean()))

    # ------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Called on rank 0 only; the states of all ranks were gathered before.
        states = self._rank_rng_states
        if states is None or self._rng_resume is None:
            # A save outside the CheckpointHook rule (e.g. a best checkpoint after a
            # validation): the other ranks' states are not at hand and this rank's
            # may have moved since the step; resuming from it is not exact.
            states = None
        checkpoint['ael_state'] = dict(
            torch_rng=states,
            sampler_seed=self._sampler.seed if self._sampler is not None else None)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('ael_state')
        meta_iter = checkpoint.get('meta', {}).get('iter')
        self._loaded = dict(
            ael_state=state,
            has_bank=any(k.startswith('confidence_bank.')
                         for k in checkpoint.get('state_dict', {})))
        rng_states = (state or {}).get('torch_rng') or []
        if meta_iter is not None and len(rng_states) == dist.get_world_size():
            self._rng_resume = (meta_iter, rng_states[dist.get_rank()])

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'confidence_bank'):
            raise TypeError('ConfidenceBankHook needs a model with a confidence bank '
                            f'(AELSegmentor), got {type(model).__name__}')
        return model
