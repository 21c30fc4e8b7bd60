"""Per-step labeled + unlabeled sampling for SemiSegDataset."""
import itertools
from typing import Callable, Iterator, Optional, Tuple

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

# Host-side ACM source choice: (generator) -> (class id or -1, unlabeled index)
SourceSelector = Callable[[torch.Generator], Tuple[int, int]]


@DATA_SAMPLERS.register_module()
class SemiSegSampler(Sampler):
    """Infinite sampler yielding every step's labeled and unlabeled keys.

    Each step (one dataloader batch of ``batch_size`` samples) is, in order:
    ``num_labeled`` ``('sup', i)`` keys, ``num_labeled`` ``('sup_paste', j)``
    keys when ``copy_paste``, ``num_unlabeled`` ``('unsup', k)`` CutMix
    targets and ``num_unlabeled`` ``('unsup_source', m, c)`` CutMix sources.
    Labeled and unlabeled streams are reshuffled without end (new
    permutation every pass, seeded like mmengine's ``InfiniteSampler``) and
    split by rank, so ranks see different images. Copy-paste sources are
    uniform labeled images. CutMix sources come from ``source_selector``
    when :class:`ConfidenceBankHook` installs one (ACM, Eq. 9), else uniform
    with class -1 (plain CutMix).

    The config's ``batch_size`` must equal :attr:`batch_size`; the hook
    checks it before training.

    Args:
        dataset (SemiSegDataset): The wrapped labeled + unlabeled data.
        num_labeled (int): Labeled images per step and GPU (paper: 2).
        num_unlabeled (int): CutMix pairs per step and GPU; every pair is a
            target and a source image (the original: 1 pair per GPU).
        copy_paste (bool): Whether to emit copy-paste sources.
        seed (int, optional): Seed shared by all ranks.
    """

    def __init__(self,
                 dataset,
                 num_labeled: int = 2,
                 num_unlabeled: int = 1,
                 copy_paste: bool = True,
                 seed: Optional[int] = None) -> None:
        if num_labeled < 1:
            raise ValueError(f'SemiSegSampler: num_labeled must be >= 1, got {num_labeled}')
        if num_unlabeled < 0:
            raise ValueError(f'SemiSegSampler: num_unlabeled must be >= 0, got {num_unlabeled}')
        self.rank, self.world_size = get_dist_info()
        self.num_labeled_images = len(dataset.labeled)
        self.num_unlabeled_images = len(dataset.unlabeled)
        self.num_labeled = num_labeled
        self.num_unlabeled = num_unlabeled
        self.copy_paste = copy_paste
        self.seed = sync_random_seed() if seed is None else seed
        self.source_selector: Optional[SourceSelector] = None
        # Random choices that are not a permutation stream (paste and CutMix
        # sources) differ per rank; state is part of the checkpoint via the hook.
        self.generator = torch.Generator().manual_seed(self.seed + 7919 * (self.rank + 1))

    @property
    def batch_size(self) -> int:
        return self.num_labeled * (2 if self.copy_paste else 1) + 2 * self.num_unlabeled

    def _permutations(self, size: int, offset: int) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + offset)
        while True:
            yield from torch.randperm(size, generator=generator).tolist()

    def _rank_stream(self, size: int, offset: int) -> Iterator[int]:
        return itertools.islice(self._permutations(size, offset), self.rank, None,
                                self.world_size)

    def __iter__(self) -> Iterator[tuple]:
        labeled = self._rank_stream(self.num_labeled_images, 0)
        unlabeled = self._rank_stream(self.num_unlabeled_images, 1)
        while True:
            for _ in range(self.num_labeled):
                yield ('sup', next(labeled))
            if self.copy_paste:
                for _ in range(self.num_labeled):
                    index = torch.randint(self.num_labeled_images, (1, ),
                                          generator=self.generator)
                    yield ('sup_paste', int(index))
            for _ in range(self.num_unlabeled):
                yield ('unsup', next(unlabeled))
            for _ in range(self.num_unlabeled):
                acm_class, index = self._source()
                yield ('unsup_source', index, acm_class)

    def _source(self) -> Tuple[int, int]:
        if self.source_selector is not None:
            return self.source_selector(self.generator)
        index = torch.randint(self.num_unlabeled_images, (1, ), generator=self.generator)
        return -1, int(index)

    def __len__(self) -> int:
        # Iteration-based training never exhausts it; mmengine only logs this.
        return self.num_labeled_images

    def set_epoch(self, epoch: int) -> None:
        """Infinite streams need no epoch; kept for mmengine's interface."""
