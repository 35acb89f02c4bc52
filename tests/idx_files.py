"""Writing MNIST-format (IDX) files, for tests that need data files of known content.

A module of its own, not conftest.py: notebooks/ has a conftest.py too, and two modules
named conftest cannot both be imported by name.
"""

import gzip
import struct
from pathlib import Path

import numpy as np


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
