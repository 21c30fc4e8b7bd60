"""Host-side Adaptive CutMix source choice from the bank of a fixed, lagged step."""
from collections import deque
from typing import Any, Deque, Dict, NamedTuple, Optional, Tuple

import numpy as np
import torch

from ael_mmseg.models.utils.class_sampling import acm_class_probabilities


class _HostCopy:
    """A host copy of a small device tensor, made without waiting for the device.

    On an accelerator the copy goes to pinned memory with ``non_blocking`` and
    an event; :meth:`numpy` waits for that event only, when the value is read
    (``lag`` steps later, long after the copy finished). On the CPU it is a
    plain copy.
    """

    def __init__(self, tensor: torch.Tensor) -> None:
        tensor = tensor.detach()
        self._event = None
        if tensor.device.type == 'cuda':
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = tensor.to('cpu', copy=True)

    def numpy(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        return self._host.numpy()


class _Step(NamedTuple):
    """What one training step wrote: the bank after it, and the presence columns it set."""
    confidence: Any  # (C,) float
    indices: Any  # (M,) int
    rows: Any  # (M, C) bool


class ACMSourceState:
    """The ACM (class, source image) choice of a step, from the state ``lag`` steps before.

    Holds host copies of the confidence bank and of the presence table
    (class x unlabeled image) as they were after step ``base_step`` (the
    base), and what every later step wrote: the bank after it and the
    presence columns of the images it saw (:meth:`push`, fed by ``AELHook``
    after each step). The source of step ``t`` is drawn (:meth:`sample_source`)
    from the state after ``max(0, t - lag)`` steps, whenever the data loader
    asks: the choice is the same with any worker count and prefetch depth up
    to the lag (the loader draws step ``t`` once at least
    ``t - num_workers * prefetch_factor`` steps have finished), and the same
    in a resumed run, which loads this object's state from the checkpoint
    (:meth:`state_dict`). The base follows ``lag`` steps behind the newest
    step; a step's columns are applied to it when it drops out of the lag
    window, so the host cost per step is that of the rows written, not of
    the table.

    Args:
        lag (int): Steps between the state a choice reads and the step it is for.
        confidence (array-like): (C,) the bank after ``step`` steps.
        presence (array-like): (C, N) bool presence table after ``step`` steps.
        step (int): Steps trained when the state was taken.
    """

    def __init__(self, lag: int, confidence, presence, step: int = 0) -> None:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f'ACMSourceState: lag must be an int >= 1, got {lag!r}')
        self.lag = lag
        self.base_step = int(step)
        self._base_confidence = np.array(_as_numpy(confidence), dtype=np.float32)
        self._base_presence = np.array(_as_numpy(presence), dtype=bool)
        if self._base_presence.ndim != 2 or self._base_presence.shape[0] != \
                self._base_confidence.shape[0]:
            raise ValueError('ACMSourceState: presence must be (C, N) with C = '
                             f'{self._base_confidence.shape[0]} classes, got '
                             f'{self._base_presence.shape}')
        if self._base_presence.shape[1] == 0:
            raise ValueError('ACMSourceState: the presence table covers no unlabeled image; '
                             'size it to the unlabeled set first (resize_presence)')
        self._steps: Deque[_Step] = deque()  # steps base_step + 1 ... latest_step

    @property
    def num_classes(self) -> int:
        return self._base_presence.shape[0]

    @property
    def num_images(self) -> int:
        return self._base_presence.shape[1]

    @property
    def latest_step(self) -> int:
        """int: Steps whose writes this state holds."""
        return self.base_step + len(self._steps)

    # ------------------------------------------------------------ updates
    def push(self, step: int, confidence: torch.Tensor, indices: Optional[torch.Tensor],
             rows: Optional[torch.Tensor]) -> None:
        """Record what step ``step`` (1-based: the number of steps done) wrote.

        Args:
            step (int): ``latest_step + 1``.
            confidence (Tensor): (C,) the bank after the step, any device.
            indices (Tensor, optional): (M,) unlabeled indices whose presence
                columns the step wrote (None: none).
            rows (Tensor, optional): (M, C) bool, the columns written.
        """
        if step != self.latest_step + 1:
            raise RuntimeError(f'ACMSourceState: step {step} pushed after step '
                               f'{self.latest_step}; every step must be pushed once, in order')
        if indices is None:
            indices = torch.zeros(0, dtype=torch.long)
            rows = torch.zeros(0, self.num_classes, dtype=torch.bool)
        self._steps.append(_Step(_HostCopy(confidence), _HostCopy(indices), _HostCopy(rows)))
        while len(self._steps) > self.lag:
            self._apply_oldest()

    def set_lag(self, lag: int) -> None:
        """Change the lag (a resume with another ``acm_lag``); drops history beyond it."""
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f'ACMSourceState: lag must be an int >= 1, got {lag!r}')
        self.lag = lag
        while len(self._steps) > self.lag:
            self._apply_oldest()

    def _apply_oldest(self) -> None:
        step = self._steps.popleft()
        self._base_confidence = step.confidence.numpy().astype(np.float32)
        indices = step.indices.numpy()
        if indices.size:
            self._base_presence[:, indices] = step.rows.numpy().T
        self.base_step += 1

    # ----------------------------------------------------------- sampling
    def state_step(self, step: int) -> int:
        """The number of trained steps whose state the choice for step ``step`` reads.

        Raises:
            RuntimeError: When that state is not there yet: the data loader
                draws further ahead than the lag.
        """
        wanted = max(0, step - self.lag)
        if wanted > self.latest_step:
            raise RuntimeError(
                f'ACMSourceState: the CutMix sources of step {step} are drawn from the bank '
                f'after step {wanted}, but only {self.latest_step} steps have finished: the data '
                f'loader prefetches further than train_dataloader.sampler.acm_lag={self.lag}')
        return max(wanted, self.base_step)  # below the base only after a resume without history

    def confidence_at(self, state: int) -> np.ndarray:
        """(C,) the bank after ``state`` steps (``base_step <= state <= latest_step``)."""
        if state == self.base_step:
            return self._base_confidence
        return self._steps[state - self.base_step - 1].confidence.numpy()

    def holders_at(self, state: int, cls: int) -> np.ndarray:
        """Sorted indices of the unlabeled images that show class ``cls`` after ``state`` steps."""
        row = self._base_presence[cls].copy()
        for position in range(state - self.base_step):
            step = self._steps[position]
            indices = step.indices.numpy()
            if indices.size:
                row[indices] = step.rows.numpy()[:, cls]
        return np.flatnonzero(row)

    def sample_source(self, step: int, rng: np.random.Generator) -> Tuple[int, int]:
        """The (class, unlabeled image) of one CutMix pair of step ``step`` (Eq. 9).

        Draws ``c ~ softmax(1 - Conf)`` (:func:`acm_class_probabilities`) by
        inverse CDF, then an image uniformly among those whose presence entry
        for ``c`` is set, or among all when none is (the original's
        ``sample_from_bank``), from the state of :meth:`state_step`.

        Args:
            step (int): The 0-based iteration the pair is for.
            rng (numpy.random.Generator): Seeded for this pair alone.
        """
        state = self.state_step(step)
        confidence = torch.from_numpy(np.ascontiguousarray(self.confidence_at(state)))
        probs = acm_class_probabilities(confidence, self.num_classes).double().numpy()
        if not np.isfinite(probs).all():
            raise ValueError(f'ACMSourceState: the bank after step {state} is not finite: '
                             f'{confidence.tolist()}')
        cdf = np.cumsum(probs)
        cls = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side='right')),
                  self.num_classes - 1)
        holders = self.holders_at(state, cls)
        if holders.size:
            return cls, int(holders[rng.integers(holders.size)])
        return cls, int(rng.integers(self.num_images))

    # -------------------------------------------------------- checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """Tensors and ints only (loads with ``torch.load(weights_only=True)``)."""
        return dict(
            lag=self.lag,
            base_step=self.base_step,
            base_confidence=torch.from_numpy(self._base_confidence.copy()),
            base_presence=torch.from_numpy(self._base_presence.copy()),
            steps=[dict(confidence=torch.from_numpy(s.confidence.numpy().copy()),
                        indices=torch.from_numpy(s.indices.numpy().copy()),
                        rows=torch.from_numpy(s.rows.numpy().copy())) for s in self._steps])

    @classmethod
    def from_state_dict(cls, state: Dict[str, Any]) -> 'ACMSourceState':
        """Rebuild the object :meth:`state_dict` described."""
        obj = cls(int(state['lag']), state['base_confidence'], state['base_presence'],
                  int(state['base_step']))
        for step in state['steps']:
            obj._steps.append(_Step(_HostCopy(step['confidence']), _HostCopy(step['indices']),
                                    _HostCopy(step['rows'])))
        return obj


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
