"""PerClassIoUMetric: per-class IoU, mIoU.tail, tail classes read from a frequency file."""
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

from ael_mmseg.datasets.plain_layout import class_frequency_report, write_class_frequencies
from ael_mmseg.evaluation.metrics.per_class_iou_metric import PerClassIoUMetric

CLASSES = ('metal', 'rust', 'scratch', 'dent')


def _frequency_file(tmp_path, classes=CLASSES, pixels=(9000, 700, 200, 100)):
    report = class_frequency_report(['a'], {'a': np.array(pixels)}, list(classes), 0.05)
    path = str(tmp_path / 'class_frequencies.json')
    write_class_frequencies(path, report)
    return path, report


def _sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def _iou(pred, gt, c):
    inter = np.logical_and(pred == c, gt == c).sum()
    union = np.logical_or(pred == c, gt == c).sum()
    return inter / union


def test_tail_classes_from_file_give_mIoU_tail(tmp_path):
    path, report = _frequency_file(tmp_path)
    assert report['tail_classes'] == ['dent', 'scratch']  # 1% + 2% <= 5% < 1% + 2% + 7%
    metric = PerClassIoUMetric(tail_classes_file=path, iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=CLASSES)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (2, 16, 16))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, gt.shape))
    metric.process({}, [_sample(p, g) for p, g in zip(pred, gt)])
    metrics = metric.evaluate(2)
    for c, name in enumerate(CLASSES):
        assert metrics[f'IoU.{name}'] == pytest.approx(100 * _iou(pred, gt, c), abs=0.01)
    tail = np.mean([_iou(pred, gt, 3), _iou(pred, gt, 2)])
    assert metrics['mIoU.tail'] == pytest.approx(100 * tail, abs=0.01)


def test_file_for_other_classes_is_refused_when_the_dataset_is_known(tmp_path):
    path, _ = _frequency_file(tmp_path)
    init_default_scope('mmseg')
    evaluator = Evaluator(dict(type='PerClassIoUMetric', tail_classes_file=path))
    with pytest.raises(ValueError, match=r"written for the classes \['metal'.*dataset has "
                       r"\['metal', 'rust', 'scratch', 'hole'\]"):
        evaluator.dataset_meta = dict(classes=('metal', 'rust', 'scratch', 'hole'))


def test_listed_tail_classes_are_checked_when_the_dataset_is_known():
    metric = PerClassIoUMetric(tail_classes=['dent', 'hole'])
    with pytest.raises(KeyError, match=r"\['hole'\] are not dataset classes"):
        metric.dataset_meta = dict(classes=CLASSES)


def test_bad_arguments_and_files(tmp_path):
    path, _ = _frequency_file(tmp_path)
    with pytest.raises(ValueError, match='not both'):
        PerClassIoUMetric(tail_classes=['dent'], tail_classes_file=path)
    with pytest.raises(TypeError, match='tail_classes_file'):
        PerClassIoUMetric(tail_classes=path)
    missing = str(tmp_path / 'nope.json')
    with pytest.raises(FileNotFoundError, match='make_semi_splits.py plain'):
        PerClassIoUMetric(tail_classes_file=missing)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(classes=['a', 'b'], tail_classes=['c'])))
    with pytest.raises(ValueError, match=r"tail_classes \['c'\] are not in its classes"):
        PerClassIoUMetric(tail_classes_file=str(bad))
    bad.write_text(json.dumps(dict(classes=['a', 'b'])))
    with pytest.raises(ValueError, match='"tail_classes" must be a non-empty list'):
        PerClassIoUMetric(tail_classes_file=str(bad))
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='not valid JSON'):
        PerClassIoUMetric(tail_classes_file=str(bad))
