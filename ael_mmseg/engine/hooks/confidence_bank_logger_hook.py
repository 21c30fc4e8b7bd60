"""Writes the confidence bank and the sampling distributions it drives to the log."""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .model_access import unwrapped_model


@HOOKS.register_module()
class ConfidenceBankLoggerHook(Hook):
    """Per-class confidence and AEL sampling distributions as scalars.

    Every ``interval`` iterations it writes, per class, the bank's
    confidence (``ael/conf/<class>``, Eq. 7), the ACM category probability
    (``ael/acm_prob/<class>``, Eq. 9), the ACP one (``ael/acp_prob/<class>``,
    when the model has ACP settings) and the AES keep rate
    (``ael/aes_rate/<class>``, Eq. 10-11) to the visualizer backends
    (TensorBoard, ...), as :meth:`AELSegmentor.sampling_distributions`
    computes them with the functions training uses
    (:mod:`ael_mmseg.models.utils.class_sampling`); and
    the lowest and mean confidence to the text log
    (``ael_min_conf``, ``ael_mean_conf``).

    Args:
        interval (int): Logging interval in iterations.
    """

    # After ConfidenceBankHook (NORMAL, 50) applied the step, before LoggerHook
    # (BELOW_NORMAL, 60) writes the text log of the same iteration.
    priority = 55

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f'ConfidenceBankLoggerHook: interval must be >= 1, got {interval}')
        self.interval = interval

    def before_train(self, runner) -> None:
        unwrapped_model(runner, 'sampling_distributions', 'ConfidenceBankLoggerHook')
        self._class_names = list(runner.train_dataloader.dataset.metainfo.get('classes', ()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = unwrapped_model(runner, 'sampling_distributions', 'ConfidenceBankLoggerHook')
        series = model.sampling_distributions()
        scalars = {}
        for name, values in series.items():
            for class_name, value in zip(self._class_names, values.detach().cpu().tolist()):
                scalars[f'ael/{name}/{class_name}'] = value
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        conf = series['conf'].detach().cpu()
        runner.message_hub.update_scalar('train/ael_min_conf', float(conf.min()))
        runner.message_hub.update_scalar('train/ael_mean_conf', float(conf.mean()))
