"""The one hook of a mean-teacher / AEL run: teacher EMA, bank, ACM sources, keys."""
from typing import Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ael_mmseg.datasets.samplers import ACMSourceState, semi_sampler_of
from ael_mmseg.utils import keyed_random as kr
from .model_access import unwrapped_model

WARNING = 30  # logging.WARNING


def prefetch_depth(dataloader) -> int:
    """Steps a data loader draws ahead of the one training: ``num_workers * prefetch_factor``."""
    workers = getattr(dataloader, 'num_workers', 0) or 0
    if workers == 0:
        return 0
    return workers * (getattr(dataloader, 'prefetch_factor', None) or 2)


@HOOKS.register_module()
class AELHook(Hook):
    """Follows one training step of a mean teacher (and of AEL) through, in one place.

    After every training iteration, in this order:

    1. the teacher EMA update (:meth:`MeanTeacherSegmentor.update_teacher`,
       ``d = min(1 - 1/(iter + 1), m)``); with several processes the
       teacher's floating buffers are then averaged over the ranks (one small
       all-reduce), so every rank holds the checkpointed teacher;
    2. with an AEL model, the bank update (:meth:`AELSegmentor.finish_step`:
       Eq. 7 on the all-reduced statistics, the all-gathered ACM presence
       rows);
    3. with ACM, the host-side :class:`ACMSourceState` of the data sampler
       gets what the step wrote (the bank and the presence columns of the
       step's images, copied without waiting for the device), from which the
       sampler draws the CutMix sources ``train_dataloader.sampler.acm_lag``
       steps later;
    4. every ``log_interval`` iterations, with an AEL model, the bank and the
       sampling distributions it drives (``ael/conf/<class>``,
       ``ael/acm_prob/<class>``, ``ael/acp_prob/<class>``,
       ``ael/aes_rate/<class>``) go to the visualizer, the lowest and mean
       confidence (``ael_min_conf``, ``ael_mean_conf``) to the text log.

    Before every iteration it re-seeds torch's global generators from
    ``(seed, rank, iteration)`` (dropout and other draws of modules we do
    not own); the model's own draws use keyed generators
    (:mod:`ael_mmseg.utils.keyed_random`; the key seed is the data sampler's,
    handed to the model before training). Checkpoints get ``ael_state``:
    the key seed and the ACM state with the lag's history, which is all a
    resume needs beyond the model, optimiser, schedulers and iteration, and
    the number of processes; a resume with another key seed or another number
    of processes warns, naming both values and what differs.

    Before training it copies the student into the teacher (fresh runs),
    checks that the dataset and the model agree on the classes, sizes the
    presence table to the unlabeled set, and refuses a loader that prefetches
    deeper than ``acm_lag``.

    Args:
        log_interval (int): Iterations between bank logs. Defaults to 50.
    """

    priority = 'NORMAL'

    def __init__(self, log_interval: int = 50) -> None:
        if isinstance(log_interval, bool) or not isinstance(log_interval, int) \
                or log_interval < 1:
            raise ValueError(f'AELHook: log_interval must be an int >= 1, got {log_interval!r}')
        self.log_interval = log_interval
        self.key_seed = 0
        self.acm_state: Optional[ACMSourceState] = None
        self._loaded: Optional[dict] = None  # ael_state of the checkpoint loaded, if any
        self._checkpoint_has_bank: Optional[bool] = None

    # ------------------------------------------------------------- setup
    def before_train(self, runner) -> None:
        model = unwrapped_model(runner, 'update_teacher', 'AELHook')
        if runner.iter == 0:
            model.copy_student_to_teacher()
        sampler = semi_sampler_of(runner.train_dataloader)
        self.key_seed = sampler.seed if sampler is not None else (runner.seed or 0)
        model.set_key_seed(self.key_seed)
        loaded, self._loaded = self._loaded, None
        if loaded is not None and runner.iter > 0 and \
                loaded.get('key_seed') not in (None, self.key_seed):
            print_log(f'AELHook: resuming at iteration {runner.iter} from a run whose key seed '
                      f"was {loaded['key_seed']}, this run's is {self.key_seed}: the draws after "
                      'the resume differ from the original run (set `randomness.seed` in the '
                      'config to keep them)', logger='current', level=WARNING)
        world_size = dist.get_world_size()
        if loaded is not None and runner.iter > 0 and \
                loaded.get('world_size') not in (None, world_size):
            print_log(f'AELHook: resuming at iteration {runner.iter} on {world_size} '
                      f"process(es) a run trained on {loaded['world_size']}: model, teacher, "
                      'bank and presence table continue, but every draw is keyed by rank and '
                      'the data order is split by the number of processes, so the images, '
                      'crops and mixes after the resume differ from the original run, and the '
                      'global batch is now batch_size x '
                      f'{world_size}', logger='current', level=WARNING)
        if not hasattr(model, 'finish_step'):
            return
        self._check_bank(runner, model)
        self.acm_state = None
        if model.uses_acm:
            self.acm_state = self._acm_state(runner, model, sampler, loaded)
            sampler.acm_state = self.acm_state

    def _check_bank(self, runner, model) -> None:
        dataset = runner.train_dataloader.dataset
        num_classes = len(dataset.metainfo.get('classes', ()))
        if num_classes != model.num_classes:
            raise ValueError(
                f'AELHook: the dataset has {num_classes} classes '
                f'({type(dataset).__name__}.metainfo.classes) but the model has '
                f'num_classes={model.num_classes}')
        if model.uses_acm and hasattr(dataset, 'unlabeled'):
            num_unlabeled = len(dataset.unlabeled)
            covered = model.size_presence_table(num_unlabeled)
            if covered not in (0, num_unlabeled):
                print_log(f'AELHook: the ACM presence table covered {covered} images but the '
                          f'unlabeled set has {num_unlabeled}; started a new table',
                          logger='current', level=WARNING)
        if self._checkpoint_has_bank is False and runner.iter > 0:
            print_log(f'AELHook: resuming at iteration {runner.iter} from a checkpoint without '
                      'an AEL confidence bank (a non-AEL or older checkpoint): the confidence '
                      'bank and the ACM presence table restart from their initial values',
                      logger='current', level=WARNING)
        self._checkpoint_has_bank = None

    def _acm_state(self, runner, model, sampler, loaded: Optional[dict]) -> ACMSourceState:
        if sampler is None:
            raise ValueError('AELHook: the model uses Adaptive CutMix but the train dataloader '
                             'has no SemiSegSampler to choose its sources; set '
                             "train_dataloader.sampler=dict(type='SemiSegSampler') and "
                             "batch_sampler=dict(type='SemiSegBatchSampler')")
        loader = runner.train_dataloader
        depth, lag = prefetch_depth(loader), sampler.acm_lag
        if depth > lag:
            raise ValueError(
                f'AELHook: the train dataloader draws up to num_workers '
                f'({loader.num_workers}) x prefetch_factor ({depth // loader.num_workers}) = '
                f'{depth} steps ahead, more than train_dataloader.sampler.acm_lag={lag}, the '
                'age of the bank the ACM source choice reads; set acm_lag >= '
                f'{depth} or prefetch less')
        from ael_mmseg.engine.runner import SemiSegIterBasedTrainLoop
        if not isinstance(runner.train_loop, SemiSegIterBasedTrainLoop):
            print_log(f'AELHook: the train loop is {type(runner.train_loop).__name__}, which '
                      'starts the data loader before this hook installs the ACM source '
                      'choice: its first prefetched steps mix uniform sources. Use '
                      "train_cfg=dict(type='SemiSegIterBasedTrainLoop')", logger='current',
                      level=WARNING)
        cutmix, bank = model.cutmix, model.confidence_bank
        acm = (loaded or {}).get('acm_source') if runner.iter > 0 else None
        if acm is not None and int(acm['base_step']) + len(acm['steps']) == runner.iter \
                and tuple(acm['base_presence'].shape) == tuple(cutmix.presence.shape):
            state = ACMSourceState.from_state_dict(acm)
            if len(acm['steps']) < lag and state.base_step > 0:
                print_log(f"AELHook: the checkpoint keeps {len(acm['steps'])} steps of ACM "
                          f'source history, acm_lag is now {lag}: the first steps after the '
                          'resume read the oldest state kept', logger='current', level=WARNING)
            state.set_lag(lag)
            return state
        if runner.iter > 0:
            print_log(f'AELHook: resuming at iteration {runner.iter} from a checkpoint without '
                      'the ACM source history: the CutMix sources of the first '
                      f'{lag} steps are drawn from the bank of iteration {runner.iter} instead '
                      'of older ones, so they differ from an uninterrupted run',
                      logger='current', level=WARNING)
        return ACMSourceState(lag, bank.confidence, cutmix.presence, runner.iter)

    # --------------------------------------------------------- every step
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        torch.manual_seed(kr.derive_seed(self.key_seed, kr.TORCH_GLOBAL, dist.get_rank(),
                                         runner.iter))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = unwrapped_model(runner, 'update_teacher', 'AELHook')
        model.update_teacher(runner.iter)
        if dist.get_world_size() > 1:
            self._average_buffers(model.teacher)
        if not hasattr(model, 'finish_step'):
            return
        applied = model.finish_step()
        if self.acm_state is not None:
            if applied is None:  # a skipped step: nothing written, the bank as it is
                self.acm_state.push(runner.iter + 1, model.confidence_bank.confidence, None,
                                    None)
            else:
                self.acm_state.push(runner.iter + 1, applied.confidence,
                                    applied.presence_indices, applied.presence_rows)
        if self.every_n_train_iters(runner, self.log_interval):
            self._log_bank(runner, model)

    @staticmethod
    @torch.no_grad()
    def _average_buffers(module: torch.nn.Module) -> None:
        buffers = [b for b in module.buffers() if b.dtype.is_floating_point]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1).float() for b in buffers])
        dist.all_reduce(flat, op='mean')
        averaged = [part.view_as(b).to(b.dtype) for part, b in
                    zip(flat.split([b.numel() for b in buffers]), buffers)]
        torch._foreach_copy_(buffers, averaged)

    def _log_bank(self, runner, model) -> None:
        series = model.sampling_distributions()
        class_names = list(runner.train_dataloader.dataset.metainfo.get('classes', ()))
        scalars = {}
        for name, values in series.items():
            for class_name, value in zip(class_names, values.detach().cpu().tolist()):
                scalars[f'ael/{name}/{class_name}'] = value
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        conf = series['conf'].detach().cpu()
        runner.message_hub.update_scalar('train/ael_min_conf', float(conf.min()))
        runner.message_hub.update_scalar('train/ael_mean_conf', float(conf.mean()))

    # -------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['ael_state'] = dict(
            key_seed=self.key_seed, world_size=dist.get_world_size(),
            acm_source=None if self.acm_state is None else self.acm_state.state_dict())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('ael_state')
        self._checkpoint_has_bank = any(k.startswith('confidence_bank.')
                                        for k in checkpoint.get('state_dict', {}))
