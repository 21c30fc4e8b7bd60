"""Keeps the mean teacher an exponential moving average of the student."""
import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .model_access import unwrapped_model


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Teacher EMA update after every optimiser step.

    ``teacher <- d * teacher + (1 - d) * student`` with
    ``d = min(1 - 1/(iter + 1), m)`` (the original code; ``m`` is
    ``semi_train_cfg.ema_momentum``), so the teacher equals the student after
    the first step and then averages over about ``1 / (1 - m)`` steps. On a
    fresh run the teacher starts as a copy of the student, so the first
    pseudo-labels come from the same initial weights.

    mmengine's ``ExponentialMovingAverage`` is not used: it deep-copies the
    model instead of holding a config-built teacher, and its ``steps == 0``
    test reads a device tensor on every update (a host sync).

    With several processes the student's parameters are the same everywhere
    (DDP), but batch-norm running statistics are each rank's own unless the
    model uses SyncBN; the hook averages the teacher's floating buffers over
    the ranks after every update (one small all-reduce), so every rank holds
    the same teacher, the one that is checkpointed and evaluated.
    """

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        model = unwrapped_model(runner, 'update_teacher', 'TeacherEMAHook')
        if runner.iter == 0:
            model.copy_student_to_teacher()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = unwrapped_model(runner, 'update_teacher', 'TeacherEMAHook')
        model.update_teacher(runner.iter)
        if dist.get_world_size() > 1:
            self._average_buffers(model.teacher)

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
