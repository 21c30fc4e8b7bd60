"""IoUMetric that also reports every class's IoU as a metric."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from ael_mmseg.datasets.plain_layout import read_class_frequencies


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` plus ``IoU.<class>`` entries (percent).

    The stock metric prints the per-class table but returns only the means;
    returning the per-class values puts them into the scalar logs and
    TensorBoard, and lets the validation loop prefix them (``teacher/IoU.bus``),
    which is how AEL's effect on tail classes is tracked. With tail classes
    it also reports ``mIoU.tail``, the mean over those.

    The tail classes are either listed (``tail_classes``) or read from the
    ``class_frequencies.json`` that ``make_semi_splits.py plain`` writes for
    a labeled split (``tail_classes_file``): the rarest classes of that split
    by labeled pixels. The file is read when the metric is built and its
    class names are checked against the dataset's when the evaluator gets
    the dataset's metainfo, both before training starts.

    Args:
        tail_classes (Sequence[str], optional): Names of the tail classes.
        tail_classes_file (str, optional): A ``class_frequencies.json``;
            exclusive with ``tail_classes``.
        **kwargs: Arguments of :class:`IoUMetric`.
    """

    def __init__(self,
                 tail_classes: Optional[Sequence[str]] = None,
                 tail_classes_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if tail_classes and tail_classes_file:
            raise ValueError('PerClassIoUMetric: give tail_classes or tail_classes_file, not '
                             'both')
        if isinstance(tail_classes, str):
            raise TypeError(f'PerClassIoUMetric: tail_classes must be a list of class names, got '
                            f'the string {tail_classes!r} (a frequency file goes to '
                            'tail_classes_file)')
        self.tail_classes_file = tail_classes_file
        self.file_classes = None
        if tail_classes_file:
            report = read_class_frequencies(tail_classes_file)
            self.file_classes = list(report['classes'])
            tail_classes = report['tail_classes']
        self.tail_classes = list(tail_classes or [])

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        """Set the dataset metainfo and check the tail classes against it."""
        BaseMetric.dataset_meta.fset(self, dataset_meta)
        if dataset_meta and 'classes' in dataset_meta:
            self._check_tail_classes(list(dataset_meta['classes']))

    def _check_tail_classes(self, names: Sequence[str]) -> None:
        """Raise if the tail classes (or the frequency file's classes) are not ``names``."""
        if self.file_classes is not None and self.file_classes != list(names):
            raise ValueError(f'PerClassIoUMetric: {self.tail_classes_file} was written for the '
                             f'classes {self.file_classes}, but the dataset has {list(names)}')
        unknown = sorted(set(self.tail_classes) - set(names))
        if unknown:
            raise KeyError(f'PerClassIoUMetric: tail_classes {unknown} are not dataset classes '
                           f'{list(names)}')

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        columns = tuple(zip(*results))
        intersect, union = sum(columns[0]), sum(columns[1])
        iou = (intersect / union).numpy()  # NaN for classes absent from both
        names = list(self.dataset_meta['classes'])
        self._check_tail_classes(names)
        for name, value in zip(names, iou):
            metrics[f'IoU.{name}'] = float(np.round(value * 100, 2))
        if self.tail_classes:
            tail = [iou[names.index(name)] for name in self.tail_classes]
            metrics['mIoU.tail'] = float(np.round(np.nanmean(tail) * 100, 2))
        return metrics
