"""An iteration-based train loop whose resume skips the trained batches without loading them."""
import logging
from typing import Dict, List, Optional, Tuple, Union

from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator
from mmengine.runner.utils import calc_dynamic_intervals
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

from ael_mmseg.datasets.samplers import semi_sampler_of


@LOOPS.register_module()
class FastForwardIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that resumes the data stream without loading images.

    mmengine's loop restores the data position on resume by drawing and
    loading every batch of the ``iter`` trained steps (at iteration 16000 of
    an 8-GPU AEL run, ~96k decoded images per rank). This loop instead asks
    the data sampler to start at the resumed step: a sampler with a
    ``skip_to(step)`` method (:class:`SemiSegSampler`, found with
    :func:`semi_sampler_of` behind ``SemiSegBatchSampler``) regenerates only
    the index draws of the skipped steps, and the checkpoint supplies the random
    state the data pipelines would have reached (see
    :class:`ResumableCheckpointHook`). Samplers without ``skip_to`` fall back
    to mmengine's replay.

    Two further differences from the parent, both about when the data loader
    starts:

    - The data loader iterator (and its worker processes) is created when
      training starts, after the ``before_train`` hooks, not when the loop is
      built. So the sampler's position and the ACM source choice that
      ``ACMSourceHook`` installs are in place for the first prefetched
      batches, and the workers inherit signal handlers installed by hooks
      (e.g. :class:`PreemptionCheckpointHook`) instead of dying of the signal.
    - When a hook sets ``stop_training`` during an iteration (a pre-emption),
      the validation due after that iteration is skipped, so the job exits
      within the launcher's grace time. The resumed run continues after it.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader or dict): The training data loader or its config.
        max_iters (int): Total training iterations.
        val_begin (int): The iteration that begins validating. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1000.
        dynamic_intervals (list[tuple[int, int]], optional): ``(milestone,
            interval)`` pairs, as in ``IterBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        # As IterBasedTrainLoop.__init__, except that the data loader iterator is
        # made in run(): creating it starts the workers and their prefetching.
        BaseLoop.__init__(self, runner, dataloader)
        self._max_iters = int(max_iters)
        if self._max_iters != max_iters or self._max_iters < 1:
            raise ValueError(f'FastForwardIterBasedTrainLoop: max_iters must be a positive '
                             f'integer, got {max_iters!r}')
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.runner.visualizer.dataset_meta = self.dataloader.dataset.metainfo
        self.dataloader_iterator = None
        self.dynamic_milestones, self.dynamic_intervals = calc_dynamic_intervals(
            self.val_interval, dynamic_intervals)

    def run(self):
        """Launch training; on resume, start the data stream at the resumed step."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self.dataloader_iterator = self._start_data_stream()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (not self.stop_training and self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _start_data_stream(self) -> _InfiniteDataloaderIterator:
        """The data loader iterator, positioned after the ``self._iter`` trained steps."""
        sampler = self._data_sampler()
        skip_to = getattr(sampler, 'skip_to', None)
        if self._iter > 0 and callable(skip_to):
            print_log(f'Resuming the data stream at step {self._iter}: '
                      f'{type(sampler).__name__}.skip_to draws the indices of the trained '
                      'steps only, no batch is loaded', logger='current')
            skip_to(self._iter)
        iterator = _InfiniteDataloaderIterator(self.dataloader)
        if self._iter > 0 and not callable(skip_to):
            print_log(f'{type(sampler).__name__} cannot skip steps (no skip_to method): '
                      f'loading and dropping {self._iter} batches to skip the trained data',
                      logger='current', level=logging.WARNING)
            for _ in range(self._iter):
                next(iterator)
        return iterator

    def _data_sampler(self):
        """The sampler that decides the data position: the SemiSegSampler if any.

        Other samplers are used as they are: one with a ``skip_to`` method is
        skipped like :class:`SemiSegSampler`, the others are replayed.
        """
        sampler = semi_sampler_of(self.dataloader)
        if sampler is not None:
            return sampler
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if callable(getattr(batch_sampler, 'skip_to', None)):
            return batch_sampler
        return getattr(self.dataloader, 'sampler', None)
