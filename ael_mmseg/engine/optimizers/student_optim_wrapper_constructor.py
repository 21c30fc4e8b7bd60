"""Optimizer over the student of a teacher-student segmentor."""
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StudentOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, applied to ``model.student`` only.

    The EMA teacher gets no gradient, so it has no place in the optimizer.
    With a ``paramwise_cfg`` (the paper configs' 10x heads) the default
    constructor would also log a warning for every frozen teacher parameter,
    several hundred lines for a ResNet-101. ``paramwise_cfg.custom_keys`` then
    match names relative to the student (``decode_head``, ``backbone.layer4``),
    and the optimizer state in checkpoints holds the student's parameters only.

    Use as ``optim_wrapper = dict(constructor='StudentOptimWrapperConstructor', ...)``.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = model.module if is_model_wrapper(model) else model
        student = getattr(model, 'student', None)
        if not isinstance(student, nn.Module):
            raise TypeError('StudentOptimWrapperConstructor needs a model with a `student` '
                            f'module (AELSegmentor), got {type(model).__name__}; use the '
                            "default constructor (remove optim_wrapper.constructor)")
        return super().__call__(student)
