"""Per-step labeled + unlabeled sampling for SemiSegDataset."""
import itertools
import math
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ael_mmseg.utils.rng_state import set_data_rng_state
from ..semi_seg_dataset import SampleKey

# Host-side ACM source choice: (generator) -> (class id or -1, unlabeled index)
SourceSelector = Callable[[torch.Generator], Tuple[int, int]]

BATCH_SAMPLER_HINT = ("add train_dataloader.batch_sampler=dict(type='SemiSegBatchSampler') to "
                      'the config (train_dataloader.batch_size is then the labeled images per '
                      'GPU and step)')


@DATA_SAMPLERS.register_module()
class SemiSegSampler(Sampler):
    """Infinite sampler yielding the keys of one training step at a time.

    Every item is the list of keys of one step (one dataloader batch), in
    this order (:meth:`composition` gives the counts):

    * ``num_labeled`` ``('sup', i)``: labeled images;
    * ``num_labeled`` ``('sup_paste', j)`` when the dataset has a
      ``paste_pipeline`` (Adaptive Copy-Paste on), else none;
    * ``num_unlabeled`` ``('unsup', k)``: CutMix targets;
    * ``num_unlabeled`` ``('unsup_source', m, c)``: CutMix sources.

    ``num_labeled`` is the data loader's ``batch_size``:
    :class:`SemiSegBatchSampler` (``train_dataloader.batch_sampler``) hands
    it over and passes the steps on to the data loader, so the sampler
    cannot be used without it. Labeled and unlabeled streams are reshuffled
    without end (new permutation every pass, seeded like mmengine's
    ``InfiniteSampler``) and split by rank, so ranks see different images.
    Copy-paste sources are uniform labeled images. CutMix sources come from
    ``source_selector`` when a hook installs one (ACM, Eq. 9), else uniform
    with class -1 (plain CutMix).

    Resume without loading images: :meth:`skip_to` makes the next iterator
    start at a given step. The permutation streams are regenerated (indices
    only) and the generator of the paste and CutMix source draws is advanced
    by the fixed number of 32-bit draws a step uses, so the keys from that
    step on equal those of an iterator that produced every earlier step
    (``FastForwardIterBasedTrainLoop`` uses this instead of mmengine's replay
    of the trained batches). The data pipelines' own random state is restored
    from the checkpoint (:meth:`resume_data_rng`).

    Args:
        dataset (SemiSegDataset): The wrapped labeled + unlabeled data; its
            ``paste`` (None without ``paste_pipeline``) decides whether steps
            carry copy-paste sources.
        num_unlabeled (int): CutMix pairs per step and GPU; every pair is a
            target and a source image (the original: 1 pair per GPU; 0 for
            supervised training).
        seed (int, optional): Seed shared by all ranks.
    """

    def __init__(self,
                 dataset,
                 num_unlabeled: int = 1,
                 seed: Optional[int] = None,
                 **removed) -> None:
        self._refuse_removed_args(removed)
        if isinstance(num_unlabeled, bool) or not isinstance(num_unlabeled, int) \
                or num_unlabeled < 0:
            raise ValueError('SemiSegSampler: train_dataloader.sampler.num_unlabeled must be an '
                             f'int >= 0, got {num_unlabeled!r}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.num_labeled_images = len(dataset.labeled)
        self.num_unlabeled_images = len(dataset.unlabeled)
        self.num_unlabeled = num_unlabeled
        # Set by SemiSegBatchSampler: train_dataloader.batch_size.
        self.num_labeled: Optional[int] = None
        self.seed = sync_random_seed() if seed is None else seed
        self.source_selector: Optional[SourceSelector] = None
        # Random choices that are not a permutation stream (paste and CutMix
        # sources) differ per rank; state is part of the checkpoint via the hook.
        self.generator = torch.Generator().manual_seed(self.seed + 7919 * (self.rank + 1))
        self._start_step = 0
        self._data_rng: Optional[Tuple[int, Dict[str, Any]]] = None

    @staticmethod
    def _refuse_removed_args(removed: Dict[str, Any]) -> None:
        moved = dict(
            num_labeled='the labeled images per step are train_dataloader.batch_size (with '
            "train_dataloader.batch_sampler=dict(type='SemiSegBatchSampler'))",
            copy_paste='copy-paste sources are sampled iff train_dataloader.dataset.'
            'paste_pipeline is set (None: ACP off)')
        for name in removed:
            if name in moved:
                raise TypeError(f'SemiSegSampler: train_dataloader.sampler.{name} no longer '
                                f'exists: {moved[name]}; remove it from the config')
        if removed:
            raise TypeError(f'SemiSegSampler got unexpected arguments {sorted(removed)} '
                            '(train_dataloader.sampler takes num_unlabeled and seed)')

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

    def __iter__(self) -> Iterator[List[SampleKey]]:
        counts = self.composition()  # before the generator starts: errors show at iter()
        return self._steps(counts)

    def _steps(self, counts: Dict[str, int]) -> Iterator[List[SampleKey]]:
        start, self._start_step = self._start_step, 0
        if start > 0:
            self._skip_draws(start, counts)
            self._restore_data_rng(start)
        labeled = self._rank_stream(self.num_labeled_images, 0, start * counts['sup'])
        unlabeled = self._rank_stream(self.num_unlabeled_images, 1, start * counts['unsup'])
        while True:
            keys = [('sup', next(labeled)) for _ in range(counts['sup'])]
            for _ in range(counts['sup_paste']):
                index = torch.randint(self.num_labeled_images, (1, ), generator=self.generator)
                keys.append(('sup_paste', int(index)))
            keys.extend(('unsup', next(unlabeled)) for _ in range(counts['unsup']))
            for _ in range(counts['unsup_source']):
                acm_class, index = self._source()
                keys.append(('unsup_source', index, acm_class))
            yield keys

    def _skip_draws(self, num_steps: int, counts: Dict[str, int]) -> None:
        """Advance :attr:`generator` past ``num_steps`` steps' paste and source draws."""
        per_step = counts['sup_paste']  # one 32-bit draw each
        if counts['unsup_source'] > 0:
            per_step += counts['unsup_source'] * self._words_per_source()
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
        """Steps in one pass over this rank's share of the labeled images.

        Iteration-based training never exhausts the stream; mmengine only
        logs this. Counts one labeled image per step while no batch sampler
        has set ``num_labeled``.
        """
        per_rank = math.ceil(self.num_labeled_images / self.world_size)
        return math.ceil(per_rank / (self.num_labeled or 1))

    def set_epoch(self, epoch: int) -> None:
        """Infinite streams need no epoch; kept for mmengine's interface."""
