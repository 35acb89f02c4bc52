"""Drawing images from a generator: the fixed latents behind progress grids, balanced class
labels, batched generation, and loading a trained run's generator (``python -m gan_tf sample``);
for a CycleGAN, translating images and loading its two generators (``python -m gan_tf translate``).
"""

from pathlib import Path

import keras
import numpy as np

from . import data, models
from .checkpoints import CheckpointError, build, checkpoint_manager, restore, sampling_generator
from .config import CONDITIONAL, TRANSLATION, TrainConfig, from_saved, with_older_defaults
from .runlog import load_config

GRID_COLUMNS = 10  # cgan grids: this many latent vectors per class row


def fixed_latents(config):
    """The generator input behind every epoch's grid: the same for the whole run and on resume.

    cgan: GRID_COLUMNS latent vectors, repeated for every class, with the labels beside them.
    dcgan with an InfoGAN code: GRID_COLUMNS latent vectors, one row per code value.
    """
    rng = np.random.default_rng(config.seed)
    if config.categories:
        return with_code(rng.standard_normal((GRID_COLUMNS, config.latent_dim)).astype(np.float32),
                         config.categories)
    if config.model not in CONDITIONAL:
        return rng.standard_normal((config.grid_size, config.latent_dim)).astype(np.float32)
    z = rng.standard_normal((GRID_COLUMNS, config.latent_dim)).astype(np.float32)
    labels = np.repeat(np.arange(data.NUM_CLASSES, dtype=np.int32), GRID_COLUMNS)
    return [np.tile(z, (data.NUM_CLASSES, 1)), labels]


def with_code(z, categories):
    """Each noise vector of ``z`` once per code value 0 ... categories - 1 (rows of the grid, code
    by code), the code set by swapping z's largest leading entry into that value's place: a
    permutation, so every vector stays an ordinary draw of N(0, I)."""
    rows = []
    for code in range(categories):
        coded = z.copy()
        top = coded[:, :categories].argmax(1)
        idx = np.arange(len(z))
        coded[idx, top], coded[idx, code] = z[idx, code], z[idx, top]
        rows.append(coded)
    return np.concatenate(rows)


def balanced_labels(n, num_classes=data.NUM_CLASSES):
    """0, 1, ..., 9, 0, 1, ...: n labels asking for every class equally often."""
    return np.arange(n, dtype=np.int32) % num_classes


def generate(generator, n, seed=0, batch_size=500, labels=None):
    """n images from a generator as float32 (n, H, W, C) in [-1, 1]: (n, 28, 28, 1) for MNIST.

    ``labels`` (conditional generators only): one class for all images, or one per image;
    left out, every class is asked for equally often.
    """
    num_classes = models.num_classes_of(generator)
    if labels is not None and not num_classes:
        raise ValueError("this generator is unconditional: it cannot be asked for a class")
    if num_classes:
        labels = balanced_labels(n, num_classes) if labels is None else np.broadcast_to(
            np.asarray(labels, dtype=np.int32), (n,))
        if labels.min() < 0 or labels.max() >= num_classes:
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise ValueError(f"label {bad} is not a class of this generator; "
                             f"it knows classes 0 to {num_classes - 1}")
    rng = np.random.default_rng(seed)
    latent_dim = models.latent_dim_of(generator)
    chunks = []
    for start in range(0, n, batch_size):
        z = rng.standard_normal((min(batch_size, n - start), latent_dim)).astype(np.float32)
        inputs = z if labels is None else [z, labels[start:start + len(z)]]
        chunks.append(generator(inputs, training=False).numpy())
    return np.concatenate(chunks).astype(np.float32)


def newest_state(run_dir, saved):
    """A run's state restored from its newest usable checkpoint (``saved``: its config.json as a
    dict), or None when it has no checkpoint."""
    if saved is None or not (Path(run_dir) / "checkpoints" / "checkpoint").exists():
        return None
    known = {key: value for key, value in with_older_defaults(saved).items()
             if key in TrainConfig.__dataclass_fields__}
    state = build(from_saved(known))
    return state if restore(state, checkpoint_manager(state, run_dir), log=print) else None


def load_generator(run_dir):
    """The generator of a run (the moving average of its weights, when the run keeps one):
    from its newest checkpoint, else from generator.keras."""
    run_dir = Path(run_dir)
    saved = load_config(run_dir)
    if saved is not None and saved.get("model") in TRANSLATION:
        raise CheckpointError(f"{run_dir} holds a {saved['model']}, which translates images instead of "
                              f"drawing them from noise: use 'python -m gan_tf translate {run_dir} ...'")
    if state := newest_state(run_dir, saved):
        return sampling_generator(state)
    if (run_dir / "generator.keras").exists():
        return keras.models.load_model(run_dir / "generator.keras")
    raise CheckpointError(f"{run_dir} has no checkpoint and no generator.keras; "
                          "train into it first (python -m gan_tf train ... --out DIR).")


GRID_TRANSLATIONS = ("a", "G_AB(a)", "T(a), the truth", "G_BA(G_AB(a))", "G_BA(T(a))")  # cyclegan grid rows


def translate(generator, images, batch_size=500):
    """A translator's output for images (N, 28, 28, 1) in [-1, 1], as float32 in [-1, 1]."""
    images = np.asarray(images, np.float32)
    chunks = [generator(images[start:start + batch_size], training=False).numpy()
              for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 28, 28, 1), np.float32)


def grid_test_images(config):
    """The test images behind every cyclegan grid: the first of each class (uint8)."""
    images, labels = data.load(config.dataset, "test", data_dir=config.data_dir)
    return images[[int(np.argmax(labels == k)) for k in range(data.NUM_CLASSES)]]


def translation_grid(generator_ab, generator_ba, images, transform="thicken"):
    """A cyclegan's progress grid as (images, columns) for uint8 test ``images``: one row per
    GRID_TRANSLATIONS entry, one column per image. Row 3 is the known right answer for row 2,
    row 1 the one for rows 4 and 5."""
    a, truth = data.to_unit_range(images), data.to_unit_range(data.style_transform(images, transform))
    fake_b = translate(generator_ab, a)
    rows = [a, fake_b, truth, translate(generator_ba, fake_b), translate(generator_ba, truth)]
    return np.concatenate(rows), len(images)


def load_translator(run_dir, direction="ab"):
    """A cyclegan run's generator for ``direction`` "ab" (A -> B) or "ba": from the newest
    checkpoint, else from generator_ab.keras / generator_ba.keras."""
    if direction not in ("ab", "ba"):
        raise ValueError(f"direction must be 'ab' or 'ba', got {direction!r}")
    run_dir = Path(run_dir)
    saved = load_config(run_dir)
    if saved is not None and saved.get("model") not in TRANSLATION:
        raise CheckpointError(f"{run_dir} holds a {saved.get('model')}, which draws images from noise: "
                              f"use 'python -m gan_tf sample {run_dir} ...' (translate needs a cyclegan run)")
    if state := newest_state(run_dir, saved):
        return state.generator if direction == "ab" else state.generator_ba
    path = run_dir / f"generator_{direction}.keras"
    if path.exists():
        return keras.models.load_model(path)
    raise CheckpointError(f"{run_dir} has no checkpoint and no {path.name}; "
                          "train into it first (python -m gan_tf train cyclegan --out DIR).")
