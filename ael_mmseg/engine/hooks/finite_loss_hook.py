"""Stops training at the first non-finite loss, naming the iteration and the loss."""
import math

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a logged loss is NaN or infinite.

    Unlike mmengine's ``CheckInvalidLossHook`` (an ``assert`` every 50
    iterations), this checks every iteration and says which loss went bad at
    which iteration. It reads the host copies of the losses that
    ``RuntimeInfoHook`` (priority VERY_HIGH) has already made for logging,
    so it adds no device synchronisation, and it runs before
    ``CheckpointHook`` (VERY_LOW), so the poisoned weights are never saved:
    the last checkpoint on disk is the one to resume from. With several
    processes the ranks agree through one one-element all-reduce, so that all
    stop together instead of the others waiting in the next collective.

    To skip such steps with a warning instead of stopping, set
    ``model.semi_train_cfg.nonfinite_loss='skip'`` (see
    :class:`AELSegmentor`); skipped steps log no losses, so this hook then
    never fires.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs:
            return
        scalars = runner.message_hub.log_scalars
        values = {key: scalars[f'train/{key}'].current()
                  for key in outputs if f'train/{key}' in scalars}
        bad = {key: value for key, value in values.items() if not math.isfinite(value)}
        if dist.get_world_size() > 1:
            flag = torch.tensor([float(bool(bad))])
            dist.all_reduce(flag, op='max')
            if flag.item() and not bad:
                raise FloatingPointError(
                    f'non-finite loss at iteration {runner.iter + 1} on another rank (its '
                    'log names the loss); training stopped on every rank')
        if bad:
            named = ', '.join(f'{key}={value}' for key, value in bad.items())
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {named}. Training stopped '
                'before this step was checkpointed; resume from the last checkpoint (e.g. with '
                'a lower learning rate), or set model.semi_train_cfg.nonfinite_loss="skip" to '
                'skip such steps with a warning')
