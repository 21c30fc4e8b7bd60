"""On a pre-emption signal: finish the step, save a checkpoint, exit with a requeue code."""
import signal
import threading
from typing import Dict, Optional, Sequence, Union

import torch
import torch.distributed as torch_dist
from mmengine import dist
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

UNCATCHABLE = ('SIGKILL', 'SIGSTOP')


def _signal_number(name: Union[str, int]) -> int:
    """``'SIGUSR1'``, ``'USR1'`` or a number -> the signal number, or a ValueError naming it."""
    if isinstance(name, int) and not isinstance(name, bool):
        try:
            return int(signal.Signals(name))
        except ValueError:
            raise ValueError(f'PreemptionCheckpointHook: {name} is not a signal number') from None
    if isinstance(name, str):
        full = name.upper() if name.upper().startswith('SIG') else 'SIG' + name.upper()
        if full in UNCATCHABLE:
            raise ValueError(f'PreemptionCheckpointHook: {full} cannot be caught; use SIGTERM '
                             'or SIGUSR1 (Slurm: --signal=B:USR1@120)')
        number = getattr(signal, full, None)
        if isinstance(number, signal.Signals):
            return int(number)
    raise ValueError(f'PreemptionCheckpointHook: unknown signal {name!r}; use a name such as '
                     "'SIGTERM', 'SIGUSR1' or 'SIGUSR2'")


@HOOKS.register_module()
class PreemptionCheckpointHook(Hook):
    """Turns a pre-emption signal into a checkpoint and a requeue exit code.

    Cluster schedulers send a signal some time before they stop a job
    (Slurm: SIGTERM on pre-emption or at the time limit, or the signal of
    ``--signal=B:USR1@120``). This hook's handler only records the signal.
    The ranks then agree, with one all-reduce of a flag at the start of an
    iteration, whether any of them received it; if so, every rank finishes
    that iteration, the ``CheckpointHook`` writes its usual checkpoint
    (``iter_<n>.pth``, ``last_checkpoint``, ``max_keep_ckpts``) with
    everything hooks add to it (``AELHook``'s ``ael_state``),
    the loop stops, and after the remaining ``after_train`` /
    ``after_run`` hooks the process exits with ``exit_code`` (75,
    ``EX_TEMPFAIL``: "try again"), which ``tools/slurm_train.sh`` turns into
    ``scontrol requeue``. ``--resume`` continues the run.

    A signal that reaches only some ranks is safe: every rank takes part in
    every agreement, at the same iterations, whatever it received, so they
    all stop after the same iteration (no rank waits in a collective the
    others never join).

    Cost: with one process the flag is read every iteration (no
    communication). With several, the agreement is an all-reduce of one
    integer every ``sync_interval`` iterations over a gloo (CPU) process
    group, made once for this hook when the default backend is NCCL: it
    never touches the GPU, so it adds no host-device synchronisation to the
    training step. The signal is acted on at the first agreement after it,
    so the signal's lead time must cover ``sync_interval`` steps plus the
    checkpoint write (Slurm's ``@120`` is 120 s).

    Args:
        signals (Sequence[str | int]): The signals to catch. Defaults to
            ``('SIGTERM', 'SIGUSR1')``.
        sync_interval (int): Iterations between agreements when there are
            several processes. Defaults to 10.
        exit_code (int): Exit status after the checkpoint, in [1, 255].
            Defaults to 75.
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW): at most one save per iteration

    def __init__(self,
                 signals: Sequence[Union[str, int]] = ('SIGTERM', 'SIGUSR1'),
                 sync_interval: int = 10,
                 exit_code: int = 75) -> None:
        if isinstance(signals, (str, int)) or not signals:
            raise ValueError('PreemptionCheckpointHook: signals must be a non-empty list of '
                             f"signal names such as ['SIGTERM', 'SIGUSR1'], got {signals!r}")
        self.signals = [_signal_number(name) for name in signals]
        if not isinstance(sync_interval, int) or sync_interval < 1:
            raise ValueError(f'PreemptionCheckpointHook: sync_interval must be an integer >= 1, '
                             f'got {sync_interval!r}')
        if not isinstance(exit_code, int) or not 1 <= exit_code <= 255:
            raise ValueError(f'PreemptionCheckpointHook: exit_code must be in [1, 255] (0 would '
                             f'look like a finished run), got {exit_code!r}')
        self.sync_interval = sync_interval
        self.exit_code = exit_code
        self.received: Optional[int] = None  # signal number, set by the handler
        self.stop_iter: Optional[int] = None  # the iteration after which the run stops
        self._previous_handlers: Dict[int, object] = {}
        self._group = None

    # ---------------------------------------------------------------- setup
    def before_run(self, runner) -> None:
        if threading.current_thread() is not threading.main_thread():
            print_log('PreemptionCheckpointHook: not in the main thread, cannot install signal '
                      'handlers; pre-emption signals will stop the run without a checkpoint',
                      logger='current', level=30)
        else:
            for number in self.signals:
                self._previous_handlers[number] = signal.signal(number, self._handle)
        if dist.get_world_size() > 1 and torch_dist.get_backend() != 'gloo':
            # Every rank makes it here, in the same order: new_group is collective.
            self._group = torch_dist.new_group(backend='gloo')

    def before_train(self, runner) -> None:
        hook = self._checkpoint_hook(runner)
        if hook is None:
            raise ValueError('PreemptionCheckpointHook needs a CheckpointHook with '
                             'by_epoch=False (default_hooks.checkpoint) to write its checkpoint')

    def _handle(self, signum, frame) -> None:
        # Runs between two bytecodes of the main thread: record, nothing else.
        self.received = signum

    # ----------------------------------------------------------- every step
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.stop_iter is not None:
            return
        if dist.get_world_size() > 1 and runner.iter % self.sync_interval != 0:
            return
        if self._any_rank_received():
            self.stop_iter = runner.iter

    def _any_rank_received(self) -> bool:
        if dist.get_world_size() == 1:
            return self.received is not None
        flag = torch.tensor([0 if self.received is None else 1], dtype=torch.int32)
        dist.all_reduce(flag, op='max', group=self._group)
        return bool(flag[0])

    def will_save_checkpoint(self, runner) -> bool:
        """Whether this hook saves a checkpoint after the current iteration.

        Args:
            runner (Runner): The runner, during an iteration.

        Returns:
            bool: True on every rank during the iteration the run stops after.
        """
        return self.stop_iter is not None and self.stop_iter == runner.iter

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.will_save_checkpoint(runner):
            return
        hook = self._checkpoint_hook(runner)
        name = signal.Signals(self.received).name if self.received else 'a signal on another rank'
        if hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
                hook.save_last and hook.is_last_train_iter(runner)):
            print_log(f'PreemptionCheckpointHook: {name}; the CheckpointHook saved this '
                      f'iteration ({runner.iter + 1}) already', logger='current')
        else:
            print_log(f'PreemptionCheckpointHook: {name}; saving checkpoint at '
                      f'{runner.iter + 1} iterations', logger='current')
            hook._save_checkpoint(runner)
        dist.barrier(group=self._group)  # no rank exits while rank 0 writes
        runner.train_loop.stop_training = True

    # ------------------------------------------------------------------ end
    def after_run(self, runner) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers = {}
        if self.stop_iter is None:
            return
        if runner.iter >= runner.max_iters:
            print_log('PreemptionCheckpointHook: a pre-emption signal came during the last '
                      'iteration; training is complete', logger='current')
            return
        print_log(f'PreemptionCheckpointHook: stopped after iteration {self.stop_iter + 1} of '
                  f'{runner.max_iters} on a pre-emption signal; exiting with code '
                  f'{self.exit_code}. Continue with --resume (tools/slurm_train.sh requeues '
                  'the job and resumes it).', logger='current')
        raise SystemExit(self.exit_code)

    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch:
                return hook
        return None
