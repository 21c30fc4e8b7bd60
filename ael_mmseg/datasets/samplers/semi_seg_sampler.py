"""Per-step labeled + unlabeled sampling for SemiSegDataset, keyed by step."""
import math
from typing import Dict, Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ael_mmseg.utils import keyed_random as kr
from ..semi_seg_dataset import SampleKey
from .acm_source_state import ACMSourceState

# The sample roles, in batch order; a pipeline seed is keyed by role and position in it,
# so switching ACP (paste sources) on or off leaves the other samples' draws alone.
ROLES = ('sup', 'sup_paste', 'unsup', 'unsup_source')
BATCH_SAMPLER_HINT = ("add train_dataloader.batch_sampler=dict(type='SemiSegBatchSampler') to "
                      'the config (train_dataloader.batch_size is then the labeled images per '
                      'GPU and step)')


class _KeyedOrder:
    """One rank's share of endless reshuffled passes over ``size`` items, by position.

    Pass ``e`` is the permutation keyed ``(seed, stream, e)``, the same on
    every rank; rank ``r`` of ``W`` takes the global positions ``r, r + W,
    ...``. Item ``i`` of this rank is found by arithmetic, so a stream can
    start anywhere at the cost of one permutation.
    """

    def __init__(self, size: int, seed: int, stream: int, rank: int, world_size: int) -> None:
        self.size, self.seed, self.stream = size, seed, stream
        self.rank, self.world_size = rank, world_size
        self._epoch: Optional[int] = None
        self._order: Optional[np.ndarray] = None

    def __getitem__(self, item: int) -> int:
        epoch, offset = divmod(self.rank + item * self.world_size, self.size)
        if epoch != self._epoch:
            self._order = kr.keyed_numpy(self.seed, self.stream, epoch).permutation(self.size)
            self._epoch = epoch
        return int(self._order[offset])


@DATA_SAMPLERS.register_module()
class SemiSegSampler(Sampler):
    """Infinite sampler yielding the keys of one training step at a time.

    Every item is the list of :class:`SampleKey` of one step (one dataloader
    batch), in this order (:meth:`composition` gives the counts):

    * ``num_labeled`` ``sup`` keys: labeled images;
    * ``num_labeled`` ``sup_paste`` keys when the dataset has a
      ``paste_pipeline`` (Adaptive Copy-Paste on), else none;
    * ``num_unlabeled`` ``unsup`` keys: CutMix targets;
    * ``num_unlabeled`` ``unsup_source`` keys: CutMix sources, with the
      class ACM chose them for (-1: none).

    ``num_labeled`` is the data loader's ``batch_size``:
    :class:`SemiSegBatchSampler` (``train_dataloader.batch_sampler``) hands
    it over and passes the steps on to the data loader, so the sampler
    cannot be used without it.

    Every choice is keyed (:mod:`ael_mmseg.utils.keyed_random`): labeled
    images and CutMix targets are this rank's share of endless reshuffled
    passes (ranks see different images), copy-paste sources are uniform
    labeled images, CutMix sources come from :attr:`acm_state` when
    ``AELHook`` installs one (ACM, Eq. 9, from the bank ``acm_lag`` steps
    back) or are uniform with class -1 (plain CutMix), and every key carries
    the seed of its sample's data pipeline. So step ``t`` of rank ``r`` is a
    function of ``(seed, r, t)`` alone, and a stream starts at any step by
    arithmetic (:meth:`start_at`, used on resume): nothing is loaded or
    drawn for the steps before it.

    Args:
        dataset (SemiSegDataset): The wrapped labeled + unlabeled data; its
            ``paste`` (None without ``paste_pipeline``) decides whether steps
            carry copy-paste sources.
        num_unlabeled (int): CutMix pairs per step and GPU; every pair is a
            target and a source image (the original: 1 pair per GPU; 0 for
            supervised training).
        seed (int, optional): Seed shared by all ranks; the key seed of every
            draw of training (the model's included).
        acm_lag (int): Steps between the bank an ACM source choice reads and
            the step it is for; at least ``num_workers * prefetch_factor``
            (``AELHook`` checks it).
    """

    def __init__(self,
                 dataset,
                 num_unlabeled: int = 1,
                 seed: Optional[int] = None,
                 acm_lag: int = 8) -> None:
        if isinstance(num_unlabeled, bool) or not isinstance(num_unlabeled, int) \
                or num_unlabeled < 0:
            raise ValueError('SemiSegSampler: train_dataloader.sampler.num_unlabeled must be an '
                             f'int >= 0, got {num_unlabeled!r}')
        if isinstance(acm_lag, bool) or not isinstance(acm_lag, int) or acm_lag < 1:
            raise ValueError('SemiSegSampler: train_dataloader.sampler.acm_lag must be an int '
                             f'>= 1, got {acm_lag!r}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.num_labeled_images = len(dataset.labeled)
        self.num_unlabeled_images = len(dataset.unlabeled)
        self.num_unlabeled = num_unlabeled
        self.acm_lag = acm_lag
        # Set by SemiSegBatchSampler: train_dataloader.batch_size.
        self.num_labeled: Optional[int] = None
        self.seed = sync_random_seed() if seed is None else seed
        self.acm_state: Optional[ACMSourceState] = None
        self.start_iter = 0

    @property
    def copy_paste(self) -> bool:
        """Whether steps carry copy-paste sources: the dataset has a paste pipeline."""
        return getattr(self.dataset, 'paste', None) is not None

    def set_num_labeled(self, num_labeled: int) -> None:
        """Labeled images per step (``SemiSegBatchSampler`` passes ``batch_size``)."""
        if isinstance(num_labeled, bool) or not isinstance(num_labeled, int) \
                or num_labeled < 1:
            raise ValueError('SemiSegSampler: train_dataloader.batch_size (labeled images per '
                             f'GPU and step) must be an int >= 1, got {num_labeled!r}')
        self.num_labeled = num_labeled

    def composition(self) -> Dict[str, int]:
        """Samples of each role in one step, in the order they are yielded.

        Raises:
            RuntimeError: If no :class:`SemiSegBatchSampler` set the number of
                labeled images (the config lacks ``batch_sampler``).
        """
        if self.num_labeled is None:
            raise RuntimeError('SemiSegSampler yields whole steps and takes their labeled '
                               f'image count from SemiSegBatchSampler: {BATCH_SAMPLER_HINT}')
        return dict(sup=self.num_labeled,
                    sup_paste=self.num_labeled if self.copy_paste else 0,
                    unsup=self.num_unlabeled,
                    unsup_source=self.num_unlabeled)

    @property
    def batch_size(self) -> int:
        """Samples per step, all roles together."""
        return sum(self.composition().values())

    def start_at(self, iteration: int) -> None:
        """Make iterators start at step ``iteration`` (e.g. the iteration a run resumes at).

        Raises:
            ValueError: If ``iteration`` is negative.
        """
        if iteration < 0:
            raise ValueError(f'SemiSegSampler.start_at: iteration must be >= 0, got {iteration}')
        self.start_iter = int(iteration)

    def __iter__(self) -> Iterator[List[SampleKey]]:
        counts = self.composition()  # before the generator starts: errors show at iter()
        return self._steps(counts, self.start_iter)

    def _steps(self, counts: Dict[str, int], start: int) -> Iterator[List[SampleKey]]:
        labeled = _KeyedOrder(self.num_labeled_images, self.seed, kr.LABELED_ORDER, self.rank,
                              self.world_size)
        unlabeled = _KeyedOrder(self.num_unlabeled_images, self.seed, kr.UNLABELED_ORDER,
                                self.rank, self.world_size)
        step = start
        while True:
            yield self.step_keys(step, counts, labeled, unlabeled)
            step += 1

    def step_keys(self, step: int, counts: Dict[str, int], labeled: _KeyedOrder,
                  unlabeled: _KeyedOrder) -> List[SampleKey]:
        """The keys of step ``step`` of this rank (a function of seed, rank and step)."""
        seed, rank = self.seed, self.rank
        choices = [('sup', labeled[step * counts['sup'] + j], -1) for j in range(counts['sup'])]
        if counts['sup_paste']:
            paste = kr.keyed_numpy(seed, kr.PASTE_SOURCE, rank, step).integers(
                self.num_labeled_images, size=counts['sup_paste'])
            choices.extend(('sup_paste', int(i), -1) for i in paste)
        choices.extend(('unsup', unlabeled[step * counts['unsup'] + j], -1)
                       for j in range(counts['unsup']))
        for pair in range(counts['unsup_source']):
            rng = kr.keyed_numpy(seed, kr.CUTMIX_SOURCE, rank, step, pair)
            if self.acm_state is not None:
                acm_class, index = self.acm_state.sample_source(step, rng)
            else:
                acm_class, index = -1, int(rng.integers(self.num_unlabeled_images))
            choices.append(('unsup_source', index, acm_class))
        keys, position = [], dict.fromkeys(ROLES, 0)
        for role, index, acm_class in choices:
            pipeline_seed = kr.derive_seed(seed, kr.PIPELINE, rank, step, ROLES.index(role),
                                           position[role])
            position[role] += 1
            keys.append(SampleKey(role, index, acm_class, pipeline_seed))
        return keys

    def __len__(self) -> int:
        """Steps in one pass over this rank's share of the labeled images.

        Iteration-based training never exhausts the stream; mmengine only
        logs this. Counts one labeled image per step while no batch sampler
        has set ``num_labeled``.
        """
        per_rank = math.ceil(self.num_labeled_images / self.world_size)
        return math.ceil(per_rank / (self.num_labeled or 1))

    def set_epoch(self, epoch: int) -> None:
        """Infinite streams need no epoch; kept for mmengine's interface."""
