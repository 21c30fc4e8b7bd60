"""Lets the data sampler choose ACM sources from host copies of the bank and table."""
from typing import Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ael_mmseg.datasets.samplers import semi_sampler_of
from .model_access import unwrapped_model


@HOOKS.register_module()
class ACMSourceHook(Hook):
    """Installs the Adaptive CutMix source choice (Eq. 9) in the data sampler.

    ACM draws each pair's class and source image on the host, in
    :class:`SemiSegSampler`, while the bank and the presence table live with
    the model (on the GPU). This hook keeps CPU copies of both, refreshed
    after every step (once :class:`ConfidenceBankHook` has applied it), and
    hands the sampler :meth:`select_source`, which draws with
    :meth:`AdaptiveCutMix.sample_source` from those copies -- so no sampler
    draw reads the device. Does nothing when the model mixes random boxes
    (``cutmix=dict(type='CutMix')``).

    Note: the data loader prefetches a few batches, so a source image is
    chosen from a bank up to ``num_workers * prefetch_factor`` steps old;
    with tau = 0.999 that is immaterial.
    """

    priority = 'BELOW_NORMAL'  # after ConfidenceBankHook (NORMAL) in both stages

    def __init__(self) -> None:
        self._cutmix = None
        self._bank = None
        self._confidence_cpu: Optional[torch.Tensor] = None
        self._presence_cpu: Optional[torch.Tensor] = None

    def before_train(self, runner) -> None:
        model = unwrapped_model(runner, 'uses_acm', 'ACMSourceHook')
        if not model.uses_acm:
            return
        sampler = semi_sampler_of(runner.train_dataloader)
        if sampler is None:
            raise ValueError('ACMSourceHook: the model uses Adaptive CutMix but the train '
                             'dataloader has no SemiSegSampler to choose its sources; set '
                             "train_dataloader.sampler=dict(type='SemiSegSampler') and "
                             "batch_sampler=dict(type='SemiSegBatchSampler')")
        self._cutmix, self._bank = model.cutmix, model.confidence_bank
        self._refresh()
        sampler.source_selector = self.select_source

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._cutmix is not None:
            self._refresh()

    def _refresh(self) -> None:
        # Copies even on the CPU: the sampler must not see a table mid-write.
        self._presence_cpu = self._cutmix.presence.detach().to('cpu', copy=True)
        self._confidence_cpu = self._bank.confidence.detach().to('cpu', copy=True)

    def select_source(self, generator: torch.Generator) -> Tuple[int, int]:
        """One ACM (class, unlabeled image) draw from the host copies (Eq. 9)."""
        return self._cutmix.sample_source(self._confidence_cpu, generator,
                                          presence=self._presence_cpu)
