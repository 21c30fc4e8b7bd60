"""Per-step batches of SemiSegSampler keys, and where a data loader keeps its SemiSegSampler."""
from typing import Optional

from .semi_seg_sampler import SemiSegSampler


def semi_sampler_of(dataloader) -> Optional[SemiSegSampler]:
    """The :class:`SemiSegSampler` that feeds ``dataloader``, or None.

    Looks where mmengine's ``Runner.build_dataloader`` puts it: in
    ``dataloader.batch_sampler.sampler`` when the config has a
    ``batch_sampler`` (``SemiSegBatchSampler``), else in
    ``dataloader.sampler``. Hooks and loops reach the sampler through this
    function instead of assuming one of the two layouts.

    Args:
        dataloader: A ``torch.utils.data.DataLoader`` (or anything with
            ``batch_sampler`` / ``sampler`` attributes).

    Returns:
        SemiSegSampler or None: None when the loader has no SemiSegSampler
        (e.g. a validation loader or a config dict not built yet).
    """
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    for sampler in (getattr(batch_sampler, 'sampler', None), getattr(dataloader, 'sampler', None)):
        if isinstance(sampler, SemiSegSampler):
            return sampler
    return None
