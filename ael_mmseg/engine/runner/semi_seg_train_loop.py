"""mmengine's iteration-based train loop, with a data stream that starts at the resumed step."""
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import LOOPS

from ael_mmseg.datasets.samplers import semi_sampler_of


class _KeyedDataStream:
    """The loop's data iterator over a :class:`SemiSegSampler` loader.

    Made when the loop is built; the data loader iterator it reads is made
    at the first request, when training starts (after the ``before_train``
    hooks, so the ACM source choice is installed and the workers inherit the
    hooks' signal handlers), with the sampler started at the loop's
    iteration (:meth:`SemiSegSampler.start_at`): every draw is keyed by its
    step, so nothing before that step is drawn or loaded. mmengine's
    ``IterBasedTrainLoop.run`` restores the data position on resume by
    requesting one batch per trained step before the first new step; those
    requests are answered with None, nothing is loaded for them.
    """

    def __init__(self, loop) -> None:
        self._loop = loop
        self._iterator = None
        self.replay_left = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._iterator is None:
            loop = self._loop
            semi_sampler_of(loop.dataloader).start_at(loop.iter)
            self.replay_left = loop.iter
            if loop.iter > 0:
                print_log(f'SemiSegSampler starts at step {loop.iter}: the data of the trained '
                          'steps is neither drawn nor loaded', logger='current')
            self._iterator = iter(loop.dataloader)
        if self.replay_left > 0:
            self.replay_left -= 1
            return None
        return next(self._iterator)


@LOOPS.register_module()
class SemiSegIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume loads no data for the trained steps.

    With a :class:`SemiSegSampler` loader the data iterator is a
    :class:`_KeyedDataStream`: the data loader starts when training does, at
    the resumed step, by arithmetic. Other loaders are the parent's. Takes
    ``IterBasedTrainLoop``'s arguments.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if semi_sampler_of(self.dataloader) is not None:
            self.dataloader_iterator = _KeyedDataStream(self)
            # The parent's iterator started the loader's workers, before the
            # hooks' before_run: workers forked then keep the default signal
            # actions, so a signal to the whole process group (Ctrl-C, a
            # cluster signalling every process of a job) would kill them
            # before PreemptionCheckpointHook's checkpoint. A persistent
            # loader keeps its iterator (and workers) for the next iter():
            # end it, so that the stream's first batch forks workers that
            # inherit the hooks' handlers.
            if getattr(self.dataloader, '_iterator', None) is not None:
                self.dataloader._iterator = None

    def run_iter(self, data_batch) -> None:
        if data_batch is None:
            raise RuntimeError(
                'SemiSegIterBasedTrainLoop: a training step got no batch: this mmengine '
                'version\'s IterBasedTrainLoop.run does not request one batch per trained '
                'step on resume (mmengine 0.10 does), so a replay answer of _KeyedDataStream '
                'reached training; set its replay count to what this run() requests')
        super().run_iter(data_batch)
