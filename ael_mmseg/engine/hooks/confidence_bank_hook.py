"""Applies every step's confidence-bank statistics and ACM presence rows."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from .model_access import unwrapped_model

WARNING = 30  # logging.WARNING


@HOOKS.register_module()
class ConfidenceBankHook(Hook):
    """Keeps AEL's confidence bank (Eq. 4, 7) and ACM presence table current.

    After every training iteration it calls the model's
    :meth:`AELSegmentor.finish_step`, which all-reduces the step's per-class
    statistics, applies Eq. 7 and writes the all-gathered presence rows, so
    both are identical on every rank. Before training it checks that the
    dataset and the model agree on the classes and sizes the presence table
    to the unlabeled set. Both are model buffers, hence in every checkpoint;
    resuming from a checkpoint without them logs a warning.

    Other jobs have their own hooks: :class:`ACMSourceHook` (the sampler's
    ACM source choice), :class:`ConfidenceBankLoggerHook` (per-class
    logging), :class:`ResumableCheckpointHook` (random state for exact
    resume), :class:`TeacherEMAHook` (the teacher).
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._checkpoint_has_bank = None  # set when a checkpoint is loaded

    def before_train(self, runner) -> None:
        model = unwrapped_model(runner, 'finish_step', 'ConfidenceBankHook')
        dataset = runner.train_dataloader.dataset
        class_names = list(dataset.metainfo.get('classes', ()))
        if len(class_names) != model.num_classes:
            raise ValueError(
                f'ConfidenceBankHook: the dataset has {len(class_names)} classes '
                f'({type(dataset).__name__}.metainfo.classes) but the model has '
                f'num_classes={model.num_classes}')
        if model.uses_acm and hasattr(dataset, 'unlabeled'):
            num_unlabeled = len(dataset.unlabeled)
            covered = model.size_presence_table(num_unlabeled)
            if covered not in (0, num_unlabeled):
                print_log(f'ConfidenceBankHook: the ACM presence table covered {covered} images '
                          f'but the unlabeled set has {num_unlabeled}; started a new table',
                          logger='current', level=WARNING)
        if self._checkpoint_has_bank is False and runner.iter > 0:
            print_log(f'ConfidenceBankHook: resuming at iteration {runner.iter} from a checkpoint '
                      'without an AEL confidence bank (a non-AEL or older checkpoint): the '
                      'confidence bank and the ACM presence table restart from their initial '
                      'values', logger='current', level=WARNING)
        self._checkpoint_has_bank = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        unwrapped_model(runner, 'finish_step', 'ConfidenceBankHook').finish_step()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._checkpoint_has_bank = any(k.startswith('confidence_bank.')
                                        for k in checkpoint.get('state_dict', {}))
