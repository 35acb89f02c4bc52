"""Shared fixtures: small IDX files written on the fly, and the real data folder."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Tests that train read real MNIST through the project's own setting; .ci/run sets it too.
if "GAN_TF_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GAN_TF_DATA_DIR"] = str(SHARED_DATA)


def write_idx(path, array, magic, compress=True):
    """Write an array as an IDX file (the format MNIST ships in)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_dataset(root, folder="mnist", n_train=300, n_test=50, compress=True, seed=0):
    """A fake dataset folder with the four standard files; returns its arrays."""
    rng = np.random.default_rng(seed)
    target = Path(root) / folder
    target.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    arrays = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(target / f"{prefix}-images-idx3-ubyte{suffix}", images, 0x803, compress)
        write_idx(target / f"{prefix}-labels-idx1-ubyte{suffix}", labels, 0x801, compress)
        arrays[split] = (images, labels)
    return arrays


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
