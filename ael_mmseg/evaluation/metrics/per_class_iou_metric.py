"""IoUMetric that also reports every class's IoU as a metric."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` plus ``IoU.<class>`` entries (percent).

    The stock metric prints the per-class table but returns only the means;
    returning the per-class values puts them into the scalar logs and
    TensorBoard, and lets the validation loop prefix them (``teacher/IoU.bus``),
    which is how AEL's effect on tail classes is tracked. With
    ``tail_classes`` it also reports ``mIoU.tail``, the mean over those.

    Args:
        tail_classes (Sequence[str], optional): Names of the tail classes.
        **kwargs: Arguments of :class:`IoUMetric`.
    """

    def __init__(self, tail_classes: Optional[Sequence[str]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tail_classes = list(tail_classes or [])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        columns = tuple(zip(*results))
        intersect, union = sum(columns[0]), sum(columns[1])
        iou = (intersect / union).numpy()  # NaN for classes absent from both
        names = list(self.dataset_meta['classes'])
        unknown = sorted(set(self.tail_classes) - set(names))
        if unknown:
            raise KeyError(f'PerClassIoUMetric: tail_classes {unknown} are not dataset classes '
                           f'{names}')
        for name, value in zip(names, iou):
            metrics[f'IoU.{name}'] = float(np.round(value * 100, 2))
        if self.tail_classes:
            tail = [iou[names.index(name)] for name in self.tail_classes]
            metrics['mIoU.tail'] = float(np.round(np.nanmean(tail) * 100, 2))
        return metrics
