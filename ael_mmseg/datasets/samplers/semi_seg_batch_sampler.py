"""Per-step batches of SemiSegSampler keys, and where a data loader keeps its SemiSegSampler."""
from typing import Dict, Iterator, List, Optional

from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..semi_seg_dataset import SampleKey
from .semi_seg_sampler import SemiSegSampler


@DATA_SAMPLERS.register_module()
class SemiSegBatchSampler(Sampler):
    """One batch per training step, composed by :class:`SemiSegSampler`.

    Configured as ``train_dataloader.batch_sampler=dict(type=
    'SemiSegBatchSampler')``; mmengine's ``Runner.build_dataloader`` builds
    it with the built ``train_dataloader.sampler`` and
    ``train_dataloader.batch_size``. ``batch_size`` keeps MMSeg's meaning,
    the labeled crops per GPU and step (the paper's "8x2": 2). A batch is
    then ``batch_size`` ``sup`` keys, ``batch_size`` ``sup_paste`` keys iff
    the dataset has a ``paste_pipeline`` (Adaptive Copy-Paste on),
    ``num_unlabeled`` ``unsup`` and ``num_unlabeled`` ``unsup_source`` keys
    (``train_dataloader.sampler.num_unlabeled``). The sampler composes the
    steps (:meth:`SemiSegSampler.composition`); this class hands it the
    batch size, checks the configuration and passes the steps on.

    Args:
        sampler (SemiSegSampler): The built ``train_dataloader.sampler``.
        batch_size (int): Labeled images per GPU and step.
        drop_last (bool): Ignored (the stream is endless); accepted because
            mmengine-style batch sampler configs may carry it.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool = False) -> None:
        if not isinstance(sampler, SemiSegSampler):
            raise TypeError(
                'SemiSegBatchSampler composes the steps of a SemiSegSampler: set '
                "train_dataloader.sampler=dict(type='SemiSegSampler', num_unlabeled=...) "
                f'(got {type(sampler).__name__}), or drop train_dataloader.batch_sampler')
        sampler.set_num_labeled(batch_size)
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def composition(self) -> Dict[str, int]:
        """Samples of each role in one batch, in order."""
        return self.sampler.composition()

    def __iter__(self) -> Iterator[List[SampleKey]]:
        return iter(self.sampler)

    def __len__(self) -> int:
        """Steps in one pass over this rank's labeled images (mmengine logs it)."""
        return len(self.sampler)


def semi_sampler_of(dataloader) -> Optional[SemiSegSampler]:
    """The :class:`SemiSegSampler` that feeds ``dataloader``, or None.

    Looks where mmengine's ``Runner.build_dataloader`` puts it: in
    ``dataloader.batch_sampler.sampler`` when the config has a
    ``batch_sampler`` (``SemiSegBatchSampler``), else in
    ``dataloader.sampler``. Hooks and loops reach the sampler through this
    function instead of assuming one of the two layouts. A SemiSegSampler
    without the batch sampler is returned too; iterating it raises the
    error that names the missing config key.

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
