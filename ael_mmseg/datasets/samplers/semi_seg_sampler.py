"""Per-step labeled + unlabeled sampling for SemiSegDataset."""
import itertools
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ael_mmseg.utils.rng_state import set_data_rng_state

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

    Resume without loading images: :meth:`skip_to` makes the next iterator
    start at a given step. The permutation streams are regenerated (indices
    only) and the generator of the paste and CutMix source draws is advanced
    by the fixed number of 32-bit draws a step uses, so the keys from that
    step on equal those of an iterator that produced every earlier step
    (``FastForwardIterBasedTrainLoop`` uses this instead of mmengine's replay
    of the trained batches). The data pipelines' own random state is restored
    from the checkpoint (:meth:`resume_data_rng`).

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
        self._start_step = 0
        self._data_rng: Optional[Tuple[int, Dict[str, Any]]] = None

    @property
    def batch_size(self) -> int:
        return self.num_labeled * (2 if self.copy_paste else 1) + 2 * self.num_unlabeled

    def skip_to(self, step: int) -> None:
        """Make the next iterator start at ``step`` (steps before it are not produced).

        Args:
            step (int): Number of steps (batches) already trained, e.g. the
                iteration a run resumes at.

        Raises:
            ValueError: If ``step`` is negative.
        """
        if step < 0:
            raise ValueError(f'SemiSegSampler.skip_to: step must be >= 0, got {step}')
        self._start_step = int(step)

    def resume_data_rng(self, step: int, state: Dict[str, Any]) -> None:
        """The data pipelines' random state to restore when the stream starts at ``step``.

        With ``num_workers=0`` the pipelines run in this process and draw
        from its numpy / Python generators; restoring their state from the
        checkpoint replaces the loading that mmengine's replay does. Ignored
        unless the next iterator starts at ``step`` (:meth:`skip_to`).

        Args:
            step (int): The step the state belongs to (the checkpoint's iteration).
            state (dict): From :func:`ael_mmseg.utils.rng_state.get_data_rng_state`.
        """
        self._data_rng = (int(step), state)

    def _permutations(self, size: int, generator: torch.Generator) -> Iterator[int]:
        while True:
            yield from torch.randperm(size, generator=generator).tolist()

    def _rank_stream(self, size: int, offset: int, consumed: int = 0) -> Iterator[int]:
        """This rank's share of the endless permutations, after ``consumed`` of its items."""
        position = self.rank + consumed * self.world_size
        generator = torch.Generator().manual_seed(self.seed + offset)
        for _ in range(position // size):  # whole permutations: indices only
            torch.randperm(size, generator=generator)
        return itertools.islice(self._permutations(size, generator), position % size, None,
                                self.world_size)

    def __iter__(self) -> Iterator[tuple]:
        start, self._start_step = self._start_step, 0
        if start > 0:
            self._skip_draws(start)
            self._restore_data_rng(start)
        labeled = self._rank_stream(self.num_labeled_images, 0, start * self.num_labeled)
        unlabeled = self._rank_stream(self.num_unlabeled_images, 1,
                                      start * self.num_unlabeled)
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

    def _skip_draws(self, num_steps: int) -> None:
        """Advance :attr:`generator` past ``num_steps`` steps' paste and source draws."""
        per_step = self.num_labeled if self.copy_paste else 0
        if self.num_unlabeled > 0:
            per_step += self.num_unlabeled * self._words_per_source()
        remaining = per_step * num_steps
        while remaining > 0:  # one 32-bit draw per element, in chunks of 1M
            chunk = min(remaining, 1 << 20)
            torch.randint(2, (chunk, ), generator=self.generator)
            remaining -= chunk

    def _words_per_source(self, limit: int = 64) -> int:
        """How many 32-bit draws one :meth:`_source` call takes from :attr:`generator`.

        Measured on copies of the generator: the state after one call is
        compared with the state after 0, 1, 2, ... single draws.

        Raises:
            RuntimeError: If the source choice takes more than ``limit`` draws
                or draws that are not whole 32-bit words.
        """
        state = self.generator.get_state()
        probe = torch.Generator()
        probe.set_state(state)
        selector = self.source_selector
        if selector is None:
            torch.randint(self.num_unlabeled_images, (1, ), generator=probe)
        else:
            selector(probe)
        target = probe.get_state()
        counter = torch.Generator()
        counter.set_state(state)
        for words in range(limit + 1):
            if torch.equal(counter.get_state(), target):
                return words
            torch.randint(2, (1, ), generator=counter)
        raise RuntimeError(
            f'SemiSegSampler: the CutMix source choice ({selector!r}) does not take a fixed '
            f'number (<= {limit}) of 32-bit draws from the sampler generator, so a resume '
            'cannot skip it; resume with the stock IterBasedTrainLoop instead')

    def _restore_data_rng(self, start: int) -> None:
        data_rng, self._data_rng = self._data_rng, None
        if data_rng is not None and data_rng[0] == start:
            set_data_rng_state(data_rng[1])
            return
        print_log(f'SemiSegSampler: starting at step {start} without the data pipelines\' '
                  'random state of that step (the checkpoint has none): the augmentations '
                  'after the resume differ from an uninterrupted run', logger='current',
                  level=30)

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
