"""Keyed randomness: every random draw of AEL training is a function of where it happens.

A draw does not come from a generator whose state depends on everything drawn
before (the counter-based idea of JAX's keyed PRNG): it comes from a generator
seeded for that draw alone, from ``(seed, stream, rank, iteration, slot)``.
``seed`` is the run's data sampler seed (``SemiSegSampler.seed``, the same on
every rank), ``stream`` names the consumer, ``rank`` the process, ``iteration``
the 0-based training step the draw belongs to (``runner.iter`` while the step
runs) and ``slot`` the position of the draw within the step. So a resumed run
draws exactly what the uninterrupted one drew from the resumed step on, without
any generator state in the checkpoint; and which data-loader worker loads a
sample, how many workers there are, validation, or anything else that draws
from a global generator cannot change training.

The consumers and their keys:

=====================  ==================================  ==========================
stream                 key                                 consumer
=====================  ==================================  ==========================
``LABELED_ORDER``      (epoch)                             permutation of the labeled
                                                           set for one pass; shared by
                                                           the ranks, which take every
                                                           ``world_size``-th item
``UNLABELED_ORDER``    (epoch)                             same, the CutMix targets
``PASTE_SOURCE``       (rank, iteration)                   the step's copy-paste
                                                           sources (uniform labeled
                                                           images; slot = position)
``CUTMIX_SOURCE``      (rank, iteration, pair)             the pair's CutMix source:
                                                           ACM class and image
                                                           (``ACMSourceState``) or a
                                                           uniform image
``PIPELINE``           (rank, iteration, role, position)   the sample's data pipeline:
                                                           ``SemiSegDataset`` seeds
                                                           numpy's, Python's and
                                                           torch's CPU global
                                                           generators before it runs
``MODEL``              (rank, iteration, forward, slot)    the model's own draws, on a
                                                           ``torch.Generator`` on the
                                                           model's device: ACP classes
                                                           and paste decisions
                                                           (``SLOT_ACP``), CutMix boxes
                                                           and ACM components
                                                           (``SLOT_CUTMIX``), AES keep
                                                           masks (``SLOT_AES_MIXED``,
                                                           ``SLOT_AES_LABELED``);
                                                           ``forward`` counts the
                                                           forwards of one iteration
                                                           (gradient accumulation)
``TORCH_GLOBAL``       (rank, iteration)                   torch's global generators,
                                                           re-seeded by ``AELHook``
                                                           before every step, for
                                                           draws of modules we do not
                                                           own (dropout)
=====================  ==================================  ==========================

Seeds are derived host-side (numpy ``SeedSequence`` over fixed-width words of
the key, so that different keys cannot collide by concatenation); seeding a
CUDA generator with an integer is host-side too, so none of this synchronises
the host with the device.
"""
import random
from typing import Union

import numpy as np
import torch

LABELED_ORDER = 1
UNLABELED_ORDER = 2
PASTE_SOURCE = 3
CUTMIX_SOURCE = 4
PIPELINE = 5
MODEL = 6
TORCH_GLOBAL = 7

# Slots of the MODEL stream.
SLOT_ACP = 0
SLOT_CUTMIX = 1
SLOT_AES_MIXED = 2
SLOT_AES_LABELED = 3

_MASK64 = (1 << 64) - 1


def derive_seed(seed: int, *key: int) -> int:
    """A 63-bit seed that is a pure function of ``seed`` and ``key``.

    Args:
        seed (int): The run's seed.
        *key (int): Stream id, then e.g. rank, iteration, slot.

    Returns:
        int: In ``[0, 2**63)``.
    """
    words = [len(key) + 1]
    for value in (seed, *key):
        value = int(value) & _MASK64  # negative ints wrap, as in C
        words.extend((value & 0xFFFFFFFF, value >> 32))
    state = np.random.SeedSequence(words).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def keyed_numpy(seed: int, *key: int) -> np.random.Generator:
    """A numpy ``Generator`` seeded from ``(seed, *key)`` (see :func:`derive_seed`)."""
    return np.random.default_rng(derive_seed(seed, *key))


def keyed_torch(device: Union[str, torch.device], seed: int, *key: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``(seed, *key)``, host-side."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, *key))
    return generator


def seed_host_globals(seed: int) -> None:
    """Seed numpy's, Python's and torch's CPU global generators (data pipelines draw there)."""
    np.random.seed(seed & 0xFFFFFFFF)
    random.seed(seed)
    torch.default_generator.manual_seed(seed)
