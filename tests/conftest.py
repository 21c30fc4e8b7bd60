"""Shared fixtures: tiny on-disk datasets."""
import pytest

from ael_mmseg.datasets.longtail_toy import make_longtail_toy


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A tiny long-tailed toy dataset (32x32): 6 labeled, 8 unlabeled, 4 val images."""
    root = tmp_path_factory.mktemp('longtail_toy')
    make_longtail_toy(root, num_labeled=6, num_unlabeled=8, num_val=4, size=32, seed=0)
    return str(root)
