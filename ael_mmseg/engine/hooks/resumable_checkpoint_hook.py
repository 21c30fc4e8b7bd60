"""mmengine's CheckpointHook plus the random state that makes a resume exact."""
from typing import Any, Dict, List, Optional, Tuple

from mmengine import dist
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ael_mmseg.datasets.samplers import semi_sampler_of
from ael_mmseg.utils.rng_state import get_data_rng_state, get_torch_rng_state, set_torch_rng_state

WARNING = 30  # logging.WARNING


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """A ``CheckpointHook`` whose checkpoints resume the AEL run exactly.

    Model, optimiser, schedulers, the confidence bank and the ACM presence
    table are in every checkpoint already. What an exact resume also needs is
    the random state: every rank's torch state (it drives ACP, the CutMix
    boxes and AES inside the model) and the data pipelines' numpy / Python
    state. This hook saves when and what ``CheckpointHook`` saves -- it only
    extends ``_save_checkpoint``, the one call behind every interval, last
    and pre-emption checkpoint (``PreemptionCheckpointHook`` calls it too),
    so its decision is mmengine's own -- and, just before, gathers every
    rank's state into the checkpoint's ``ael_state`` with the data sampler's
    seed. The torch state is restored at the start of the next step, in the
    resumed run and in the uninterrupted one alike, so validation or data
    loading in between cannot make them differ. On resume
    ``FastForwardIterBasedTrainLoop`` starts the sampler at the resumed step
    and the sampler restores the pipelines' state before the first batch.

    Best checkpoints (``save_best``) are written after a validation, not by
    ``_save_checkpoint``: they carry no random state, and resuming from one
    says so. With ``num_workers > 0`` the workers' augmentation state
    (seeded when they start) is not in the checkpoint, so a resumed run
    differs from an uninterrupted one after the resume.

    Takes the arguments of mmengine's ``CheckpointHook``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (iteration, state): this rank's torch RNG state to restore when that step starts.
        self._rng_resume: Optional[Tuple[int, Dict[str, Any]]] = None
        self._rank_states: Optional[List[Dict[str, Any]]] = None
        self._loaded: Optional[Dict[str, Any]] = None

    # ----------------------------------------------------------- saving
    def _save_checkpoint(self, runner) -> None:
        """Gather every rank's random state (all ranks take part), then save."""
        state = dict(get_torch_rng_state(), data=get_data_rng_state())
        self._rng_resume = (runner.iter + 1, state)
        self._rank_states = dist.all_gather_object(state) if dist.get_world_size() > 1 \
            else [state]
        try:
            super()._save_checkpoint(runner)
        finally:
            self._rank_states = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Rank 0 only. Outside _save_checkpoint (a best checkpoint) no state is at hand.
        sampler = semi_sampler_of(runner.train_dataloader)
        checkpoint['ael_state'] = dict(
            torch_rng=self._rank_states,
            sampler_seed=sampler.seed if sampler is not None else None)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._rng_resume is not None:
            iteration, state = self._rng_resume
            self._rng_resume = None
            if iteration == runner.iter:
                set_torch_rng_state(state)

    # ---------------------------------------------------------- resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('ael_state')
        self._loaded = dict(ael_state=state)
        rng_states = (state or {}).get('torch_rng') or []
        meta_iter = checkpoint.get('meta', {}).get('iter')
        if meta_iter is not None and len(rng_states) == dist.get_world_size():
            self._rng_resume = (meta_iter, rng_states[dist.get_rank()])

    def before_train(self, runner) -> None:
        super().before_train(runner)
        sampler = semi_sampler_of(runner.train_dataloader)
        if sampler is not None and self._rng_resume is not None and \
                'data' in self._rng_resume[1]:
            sampler.resume_data_rng(self._rng_resume[0], self._rng_resume[1]['data'])
        loaded, self._loaded = self._loaded, None
        if loaded is not None and runner.iter > 0:  # not for `load_from` weights of a new run
            self._warn_incomplete(runner, loaded['ael_state'], sampler)

    @staticmethod
    def _warn_incomplete(runner, state: Optional[dict], sampler) -> None:
        """Say what the resume could not restore."""
        where = f'ResumableCheckpointHook: resuming at iteration {runner.iter} from a checkpoint'
        if state is None:
            print_log(f'{where} that has no "ael_state" (not written by this hook): the random '
                      'state of the AEL sampling is not restored, so the run goes on but does '
                      'not repeat an uninterrupted run exactly', logger='current', level=WARNING)
            return
        if state.get('torch_rng') is None:
            print_log(f'{where} saved outside the checkpoint interval (e.g. a best checkpoint): '
                      'the random state of the AEL sampling is not restored, so the run does '
                      'not repeat an uninterrupted run exactly', logger='current', level=WARNING)
            return
        num_states = len(state['torch_rng'])
        if num_states != dist.get_world_size():
            print_log(f'{where} saved by {num_states} process(es), now '
                      f'{dist.get_world_size()}: the random state of the AEL sampling is not '
                      'restored', logger='current', level=WARNING)
        seed = state.get('sampler_seed')
        if sampler is not None and seed is not None and seed != sampler.seed:
            print_log(f'{where} whose data sampler seed was {seed}, but this run\'s is '
                      f'{sampler.seed}: the image order after the resume differs from the '
                      'original run (set `randomness.seed` in the config to keep it)',
                      logger='current', level=WARNING)
