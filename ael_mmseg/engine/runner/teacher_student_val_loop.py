"""Validation of both the teacher and the student of an AEL run."""
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmseg.registry import LOOPS


@LOOPS.register_module()
class TeacherStudentValLoop(ValLoop):
    """Evaluates the teacher, then the student, with the same evaluator.

    Metrics are reported as ``teacher/<metric>`` and ``student/<metric>``
    (e.g. ``teacher/mIoU``), so a ``CheckpointHook(save_best='teacher/mIoU')``
    keeps the best teacher. The model's ``predict_on`` setting is restored
    afterwards.
    """

    def run(self) -> dict:
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        model = self.runner.model
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, 'semi_test_cfg'):
            raise TypeError('TeacherStudentValLoop needs a mean-teacher segmentor (teacher '
                            f'and student), got {type(model).__name__}; use the stock ValLoop '
                            'instead')
        model.eval()
        original = model.semi_test_cfg['predict_on']
        metrics = {}
        try:
            for name in ('teacher', 'student'):
                model.semi_test_cfg['predict_on'] = name
                for idx, data_batch in enumerate(self.dataloader):
                    self.run_iter(idx, data_batch)
                results = self.evaluator.evaluate(len(self.dataloader.dataset))
                metrics.update({f'{name}/{key}': value for key, value in results.items()})
        finally:
            model.semi_test_cfg['predict_on'] = original
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
