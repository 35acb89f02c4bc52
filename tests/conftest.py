"""Shared fixtures: small IDX files written on the fly, and the real data folder."""

import os
from pathlib import Path

import pytest
from idx_files import write_dataset

import gan_tf  # noqa: F401 - before any test imports TensorFlow: it sets TF's start-up options

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Tests that train read real MNIST through the project's own setting; .ci/run sets it too.
if "GAN_TF_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GAN_TF_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture
def fake_data(tmp_path):
    """A data folder holding a small fake mnist/; yields (root, arrays)."""
    root = tmp_path / "fake_data"
    return root, write_dataset(root)


@pytest.fixture(scope="session")
def real_data_dir():
    path = os.environ.get("GAN_TF_DATA_DIR")
    if not path or not (Path(path) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set GAN_TF_DATA_DIR (see README)")
    return path
