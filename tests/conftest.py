"""Shared fixtures: small IDX files written on the fly, and the real data as gan_tf finds it."""

import pytest
from idx_files import write_dataset

import gan_tf  # noqa: F401 - before any test imports TensorFlow: it sets TF's start-up options
from gan_tf import data


@pytest.fixture
def fake_data(tmp_path):
    """A data folder holding a small fake mnist/; yields (root, arrays)."""
    root = tmp_path / "fake_data"
    return root, write_dataset(root)


@pytest.fixture(scope="session")
def real_data_dir():
    """The folder holding real MNIST and Fashion-MNIST, found the way gan_tf finds it
    ($GAN_TF_DATA_DIR, then the repo's data/), so the tests run wherever the README says to
    put the data."""
    for root in data.candidate_dirs():
        if all((root / data.FOLDERS[name]).is_dir() for name in ("mnist", "fashion_mnist")):
            return str(root)
    pytest.skip("real MNIST and Fashion-MNIST not found: see README, Data")
