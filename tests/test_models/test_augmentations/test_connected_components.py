import cv2
import numpy as np
import pytest
import torch

from ael_mmseg.models.augmentations.connected_components import (connected_components,
                                                                 default_num_iterations)


def _cv2_labels(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """cv2 component labels of a (H, W) bool mask: 0 background, 1.. components."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=connectivity)
    return labels


def _same_partition(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Whether two labellings (ours: -1 background, ref: 0 background) split pixels alike."""
    if not np.array_equal(ours < 0, ref == 0):
        return False
    fg = ref > 0
    pairs = {(int(a), int(b)) for a, b in zip(ours[fg], ref[fg])}
    return len(pairs) == len(np.unique(ours[fg])) == len(np.unique(ref[fg]))


def _refines(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Whether every one of our labels lies inside a single reference component."""
    fg = ref > 0
    return all(len(np.unique(ref[fg][ours[fg] == lab])) == 1 for lab in np.unique(ours[fg]))


def _snake(size: int) -> np.ndarray:
    """A one-pixel-wide boustrophedon path filling a (size, size) square."""
    mask = np.zeros((size, size), dtype=bool)
    mask[::2] = True
    for turn, row in enumerate(range(1, size, 2)):
        mask[row, size - 1 if turn % 2 == 0 else 0] = True
    return mask


@pytest.mark.parametrize('connectivity', [4, 8])
def test_matches_cv2_partition_on_random_maps(connectivity):
    gen = torch.Generator().manual_seed(0)
    # Densities around both percolation thresholds (8-conn ~0.41, 4-conn ~0.59)
    # give the most winding components.
    for size, density in [(7, 0.5), (16, 0.41), (16, 0.59), (31, 0.45), (48, 0.6)]:
        masks = torch.rand(3, size, size + 3, generator=gen) < density
        labels = connected_components(masks, connectivity=connectivity).numpy()
        for mask, ours in zip(masks.numpy(), labels):
            assert _same_partition(ours, _cv2_labels(mask, connectivity)), (size, density)


def test_label_is_largest_flat_index_of_component():
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(1, 20, 13, generator=gen) < 0.5
    ours = connected_components(mask)[0].numpy()
    ref = _cv2_labels(mask[0].numpy(), 8)
    flat_index = np.arange(20 * 13).reshape(20, 13)
    for comp in range(1, ref.max() + 1):
        sel = ref == comp
        assert np.all(ours[sel] == flat_index[sel].max())


def test_background_is_minus_one_and_empty_masks_work():
    mask = torch.zeros(2, 5, 6, dtype=torch.bool)
    mask[1, 2, 3] = True
    labels = connected_components(mask)
    expected = torch.full((2, 5, 6), -1, dtype=torch.long)
    expected[1, 2, 3] = 2 * 6 + 3
    assert torch.equal(labels, expected)


def test_diagonal_neighbours_join_only_with_8_connectivity():
    mask = torch.eye(4, dtype=torch.bool).unsqueeze(0)
    assert connected_components(mask, connectivity=8)[0][mask[0]].unique().numel() == 1
    assert connected_components(mask, connectivity=4)[0][mask[0]].unique().numel() == 4


def test_too_few_iterations_split_but_never_merge():
    snake = _snake(32)
    ref = _cv2_labels(snake, 8)
    # Two disjoint snakes side by side must never share a label either.
    both = np.concatenate([snake, np.zeros((32, 1), bool), snake], axis=1)
    ref_both = _cv2_labels(both, 8)
    ours = connected_components(torch.from_numpy(both)[None], num_iterations=2)[0].numpy()
    assert len(np.unique(ours[both])) > 2  # the bound really cut the snakes
    assert _refines(ours, ref_both)
    # With the default count the snake is labelled exactly.
    exact = connected_components(torch.from_numpy(snake)[None])[0].numpy()
    assert _same_partition(exact, ref)


def test_default_iterations_grow_logarithmically():
    assert default_num_iterations(128, 128) == 28
    assert default_num_iterations(1, 1) == 2


@pytest.mark.parametrize('kwargs, match', [
    (dict(mask=torch.zeros(4, 4, dtype=torch.bool)), 'mask'),
    (dict(mask=torch.zeros(1, 4, 4)), 'mask'),
    (dict(mask=torch.zeros(1, 4, 4, dtype=torch.bool), connectivity=6), 'connectivity'),
    (dict(mask=torch.zeros(1, 4, 4, dtype=torch.bool), num_iterations=-1), 'num_iterations'),
])
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        connected_components(**kwargs)


def test_runs_without_reading_tensor_values():
    # On the meta device any host read of a value (.item(), bool(), nonzero)
    # raises, so finishing proves the labelling is free of host-device syncs.
    labels = connected_components(torch.zeros(2, 9, 7, dtype=torch.bool, device='meta'))
    assert labels.shape == (2, 9, 7) and labels.dtype == torch.long
