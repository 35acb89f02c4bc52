"""CycleGAN (notebook 06): the style transforms, losses, image pool, networks, step, training
run with resume, the translation scores on known cases, and the translate command."""

import json
import os
import subprocess
import sys
from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf import data, losses, metrics, models
from gan_tf.config import ConfigError, TrainConfig
from gan_tf.sampling import load_translator, translate
from gan_tf.steps import ImagePool, cyclegan_train_step, make_optimizer
from gan_tf.train import read_history, train


def small(**overrides):
    """128 MNIST images: 64 per domain in batches of 16, four steps an epoch."""
    settings = dict(model="cyclegan", epochs=2, batch_size=16, limit=128, log_every=1, eval_every=0,
                    jit_compile=False)
    return TrainConfig(**{**settings, **overrides})


# --- the two domains ---------------------------------------------------------------------

def test_thicken_grows_a_dot_into_a_3x3_square_and_thin_shrinks_a_square():
    image = np.zeros((1, 7, 7, 1), np.uint8)
    image[0, 3, 3] = 200
    thick = data.style_transform(image, "thicken")[0, ..., 0]
    assert (thick[2:5, 2:5] == 200).all() and thick.sum() == 9 * 200
    square = np.zeros((1, 7, 7, 1), np.uint8)
    square[0, 2:5, 2:5] = 255
    thin = data.style_transform(square, "thin")[0, ..., 0]
    assert (thin > 0).sum() == 4 and thin.max() == 255  # a 3x3 square loses a row and a column
    np.testing.assert_array_equal(data.style_transform(square, "invert"), 255 - square)
    with pytest.raises(data.DataError, match="unknown style transform 'blur'; choose one of: thicken"):
        data.style_transform(square, "blur")


def test_the_two_domains_share_no_image():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
    a, b = data.unpaired_domains(images, "invert")
    np.testing.assert_array_equal(a[:, 0, 0, 0], [0, 40, 80, 120, 160])
    np.testing.assert_array_equal(b[:, 0, 0, 0], 255 - np.array([20, 60, 100, 140, 180]))


# --- losses ------------------------------------------------------------------------------

def test_least_squares_losses_at_known_points():
    ones, zeros = tf.ones([4, 7, 7, 1]), tf.zeros([4, 7, 7, 1])
    assert float(losses.least_squares_discriminator_loss(ones, zeros)) == 0.0  # D right everywhere
    assert float(losses.least_squares_discriminator_loss(zeros, ones)) == 1.0  # 0.5 * (1 + 1)
    assert float(losses.least_squares_discriminator_loss(ones * 0.5, ones * 0.5)) == 0.25
    assert float(losses.least_squares_generator_loss(ones)) == 0.0
    assert float(losses.least_squares_generator_loss(-ones)) == 4.0
    assert float(losses.l1_distance(ones, -ones)) == 2.0


# --- the pool of past fakes ----------------------------------------------------------------

def _batch(value, n=4):
    return tf.fill([n, 28, 28, 1], float(value))


@pytest.mark.parametrize("n, xla", [(4, False), (8, False), (4, True)])
def test_the_pool_shows_new_fakes_while_filling_then_swaps_about_half(n, xla):
    """Batches of n into 8 slots; with XLA as on a GPU (fixed shapes only), compiled here on the CPU."""
    pool, rng = ImagePool(8), tf.random.Generator.from_seed(0)
    query = tf.function(pool.query, jit_compile=True) if xla else pool.query
    for value in range(1, 8 // n + 1):  # fills the 8 slots
        np.testing.assert_array_equal(query(_batch(value, n), rng).numpy(), _batch(value, n).numpy())
    assert int(pool.count) == 8
    assert sorted(set(pool.images.numpy()[:, 0, 0, 0])) == list(np.arange(1.0, 8 // n + 1))
    shown_old = []
    for value in range(10, 210):  # each query: every image shown new or swapped for a stored one
        before = Counter(pool.images.numpy()[:, 0, 0, 0].tolist())
        shown = query(_batch(value, n), rng).numpy()[:, 0, 0, 0]
        swapped_out = Counter(shown[shown != value].tolist())
        assert not swapped_out - before  # every old image shown was in the pool
        shown_old.append(np.mean(shown != value))
        after = Counter(pool.images.numpy()[:, 0, 0, 0].tolist())
        # Each swapped image's slot now holds the new fake; the other slots are untouched.
        assert after[value] == sum(swapped_out.values())
        assert after - Counter({value: after[value]}) == before - swapped_out
    assert 0.4 < np.mean(shown_old) < 0.6


def test_a_pool_of_size_zero_passes_fakes_through_and_the_pool_is_checkpointed(tmp_path):
    rng = tf.random.Generator.from_seed(0)
    fakes = _batch(3)
    assert ImagePool(0).query(fakes, rng) is fakes
    pool = ImagePool(8)
    pool.query(_batch(5), rng)
    tf.train.Checkpoint(pool=pool).write(str(tmp_path / "ckpt"))
    restored = ImagePool(8)
    tf.train.Checkpoint(pool=restored).read(str(tmp_path / "ckpt")).assert_consumed()
    assert int(restored.count) == 4
    np.testing.assert_array_equal(restored.images.numpy(), pool.images.numpy())


# --- networks and step -------------------------------------------------------------------

def test_networks_shapes_and_instance_norm_keeps_images_independent():
    translator, critic = models.make_translator(), models.make_patch_discriminator()
    images = tf.random.uniform([3, 28, 28, 1], -1, 1, seed=1)
    out = translator(images, training=True)
    assert out.shape == (3, 28, 28, 1) and float(tf.reduce_max(tf.abs(out))) <= 1
    assert critic(images, training=True).shape == (3, 7, 7, 1)
    # Instance normalisation: image 0's translation does not depend on the rest of its batch.
    alone = translator(images[:1], training=True)
    np.testing.assert_allclose(alone.numpy(), out[:1].numpy(), atol=1e-5)


def _step_parts(seed=0, pool_size=4):
    keras.utils.set_random_seed(seed)
    gens = (models.make_translator(name="g_ab"), models.make_translator(name="g_ba"))
    discs = (models.make_patch_discriminator(name="d_a"), models.make_patch_discriminator(name="d_b"))
    g_opts = tuple(make_optimizer(g, 2e-4, 0.5) for g in gens)
    d_opts = tuple(make_optimizer(d, 2e-4, 0.5) for d in discs)
    pools = (ImagePool(pool_size), ImagePool(pool_size))
    return gens, discs, g_opts, d_opts, pools, tf.random.Generator.from_seed(seed)


def test_the_step_updates_all_four_networks_and_the_cycle_loss_falls(real_data_dir):
    gens, discs, g_opts, d_opts, pools, rng = _step_parts()
    images, _ = data.load("mnist", "test", data_dir=real_data_dir)
    a, b = data.unpaired_domains(images[:64])
    a, b = a.astype(np.float32) / 127.5 - 1, b.astype(np.float32) / 127.5 - 1
    before = [net.get_weights()[0].copy() for net in gens + discs]
    history = [cyclegan_train_step(gens, discs, g_opts, d_opts, a[:4], b[:4], pools, rng)
               for _ in range(15)]
    for net, old in zip(gens + discs, before):
        assert not np.allclose(net.get_weights()[0], old), net.name
    cycle = [float(h["cycle"]) for h in history]
    assert all(np.isfinite(float(h[k])) for h in history for k in ("d_loss", "g_loss", "cycle", "identity"))
    assert np.mean(cycle[-3:]) < 0.7 * np.mean(cycle[:3])  # reconstructing the same 4 digits
    # Without the identity term it is neither computed nor reported.
    no_identity = cyclegan_train_step(gens, discs, g_opts, d_opts, a[:4], b[:4], pools, rng,
                                      identity_weight=0.0)
    assert float(no_identity["identity"]) == 0.0


def test_the_whole_step_compiles_with_xla_as_on_a_gpu(tmp_path, real_data_dir):
    """A GPU gets XLA by default (gan_tf.hardware); the same compiled step runs here on the CPU."""
    history = train(small(epochs=1, jit_compile=True, data_dir=real_data_dir), tmp_path, verbose=0)
    assert json.loads((tmp_path / "config.json").read_text())["jit_compile"] is True
    assert all(np.isfinite(history[key]).all() for key in ("d_loss", "g_loss", "cycle", "identity"))


# --- settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (dict(transform="blur"), "unknown transform 'blur'; choose one of: thicken"),
    (dict(cycle_weight=-1.0), "cycle_weight must be a number >= 0"),
    (dict(identity_weight=float("nan")), "identity_weight must be a number >= 0"),
    (dict(pool_size=-1), "pool_size must not be negative"),
    (dict(pool_size=8), "pool_size 8 is smaller than a batch (16)"),
    (dict(mode_seeking=0.2), "mode_seeking is for dcgan and cgan"),
    (dict(batch_size=40, limit=64), "batch_size 40 is larger than the 32 training images"),
])
def test_impossible_cyclegan_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        small(**overrides).validate()


# --- a training run ------------------------------------------------------------------------

def _weights(run_dir, direction):
    return [w.numpy() for w in load_translator(run_dir, direction).weights]


def test_a_stopped_cyclegan_run_resumes_to_the_same_end(tmp_path, real_data_dir):
    """Both generators, both discriminators, their optimizers, the pools and the noise stream
    are all in the checkpoint: 1 + 1 epochs end where 2 straight epochs do."""
    settings = dict(data_dir=real_data_dir, eval_every=2)  # scored after epoch 2 only (CI time)
    straight = train(small(**settings), tmp_path / "straight", verbose=0)
    train(small(**settings, epochs=1), tmp_path / "resumed", verbose=0)
    resumed = train(small(**settings), tmp_path / "resumed", verbose=0)
    assert resumed["epoch"] == straight["epoch"] == [1, 2]
    np.testing.assert_allclose(resumed["cycle"], straight["cycle"], rtol=1e-4)
    assert np.isnan(straight["l1_ab"][0]) and np.isfinite(straight["l1_ab"][1])
    np.testing.assert_allclose(resumed["l1_ab"][1], straight["l1_ab"][1], rtol=1e-3)
    for direction in ("ab", "ba"):
        pairs = zip(_weights(tmp_path / "resumed", direction), _weights(tmp_path / "straight", direction))
        for x, y in pairs:
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    run = tmp_path / "straight"
    for name in ("samples/epoch_002.png", "progress.gif", "generator_ab.keras", "generator_ba.keras"):
        assert (run / name).is_file(), name
    history = read_history(run / "history.csv")
    for key in ("d_loss", "g_loss", "cycle", "identity"):
        assert np.isfinite(history[key]).all(), key
    for key in ("l1_ab", "l1_identity", "class_kept_ab", "cfid_ab"):
        assert np.isfinite(history[key][-1]), key
    # A changed setting on resume is refused like any other.
    with pytest.raises(ConfigError, match="cycle_weight: saved 10.0, now 0.0"):
        train(small(**settings, epochs=3, cycle_weight=0.0), run, verbose=0)


# --- scores on known cases ---------------------------------------------------------------

def _identity_translator():
    image = keras.Input(shape=(28, 28, 1))
    return keras.Model(image, keras.layers.Identity()(image))


def _perfect_thickener():
    """T itself as a network: a 3x3 max filter is the 'thicken' dilation, in any pixel scale."""
    image = keras.Input(shape=(28, 28, 1))
    return keras.Model(image, keras.layers.MaxPooling2D(3, strides=1, padding="same")(image))


def test_translation_scores_rank_known_translators(real_data_dir):
    evaluator = metrics.Evaluator("mnist", real_data_dir, log=lambda *a: None)
    images, labels = data.load("mnist", "test", data_dir=real_data_dir)
    images, labels = images[:2000], labels[:2000]
    identity = metrics.translation_scores(_identity_translator(), _identity_translator(), images, labels,
                                          "thicken", evaluator)
    assert identity["l1_ab"] == pytest.approx(identity["l1_identity"]) and identity["l1_identity"] > 0.05
    assert identity["cfid_ab"] == pytest.approx(identity["cfid_identity"]) and identity["cfid_identity"] > 5
    assert identity["cycle_l1"] == 0 and identity["class_kept_ab"] > 0.98
    perfect = metrics.translation_scores(_perfect_thickener(), _identity_translator(), images, labels,
                                         "thicken", evaluator)
    assert perfect["l1_ab"] < 1e-6 and perfect["cfid_ab"] < 1e-3
    assert perfect["class_kept_ab"] == perfect["truth_class_kept"] > 0.9
    # A translator that draws every input as the same digit keeps no class.
    image = keras.Input(shape=(28, 28, 1))
    one_digit = images[:1].astype(np.float32) / 127.5 - 1
    constant = keras.Model(image, keras.layers.Lambda(lambda x: x * 0 + one_digit)(image))
    collapsed = metrics.translation_scores(constant, constant, images, labels, "thicken", evaluator)
    assert collapsed["class_kept_ab"] < 0.2 and collapsed["l1_ab"] > identity["l1_ab"]


# --- the command line ----------------------------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_tf", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ))


def test_train_and_translate_from_the_command_line(tmp_path, real_data_dir):
    run = tmp_path / "run"
    result = cli("train", "cyclegan", "--epochs", 1, "--limit", 64, "--out", run, "--data-dir", real_data_dir,
                 "--transform", "invert", "--eval-every", 0, "--no-xla")
    assert result.returncode == 0, result.stderr
    assert "generator_ab.keras" in result.stdout
    assert json.loads((run / "config.json").read_text())["transform"] == "invert"
    images, _ = data.load("mnist", "test", data_dir=real_data_dir)
    np.save(tmp_path / "digits.npy", images[:12])  # uint8, N x 28 x 28 x 1
    result = cli("translate", run, "--direction", "ba", "--input", tmp_path / "digits.npy",
                 "--out", tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr
    assert "translated 12 images (uint8 pixels 0..255) B -> A" in result.stdout
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (12, 28, 28, 1) and out.dtype == np.float32 and -1 <= out.min() <= out.max() <= 1
    expected = translate(load_translator(run, "ba"), images[:12].astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    result = cli("translate", run, "--input", tmp_path / "digits.npy", "--out", tmp_path / "pairs.png")
    assert result.returncode == 0 and (tmp_path / "pairs.png").stat().st_size > 0

    # Bad input: each one clear error line, nothing written.
    np.save(tmp_path / "wrong_shape.npy", np.zeros((3, 32, 32, 3), np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 28, 28), np.nan, np.float32))
    (tmp_path / "broken.npy").write_bytes(b"not an array")
    for args, message in [
        (["--input", tmp_path / "missing.npy"], "missing.npy does not exist"),
        (["--input", tmp_path / "broken.npy"], "broken.npy is not a readable .npy array"),
        (["--input", tmp_path / "wrong_shape.npy"], "images must have shape (N, 28, 28, 1) or (N, 28, 28); "
                                                    "got (3, 32, 32, 3)"),
        (["--input", tmp_path / "nan.npy"], "pixel values are NaN or infinite"),
        (["--input", tmp_path / "digits.npy", "--direction", "ac"], "invalid choice: 'ac'"),
    ]:
        result = cli("translate", run, *args, "--out", tmp_path / "bad.npy")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and not (tmp_path / "bad.npy").exists()
    result = cli("translate", run, "--input", tmp_path / "digits.npy", "--out", tmp_path / "bad.jpg")
    assert result.returncode == 2 and "--out must end in .npy or .png" in result.stderr
    # A noise-to-image run cannot translate, and a cyclegan cannot sample from noise.
    result = cli("sample", run, "--out", tmp_path / "s.npy")
    assert result.returncode == 1 and "translates images instead of drawing them" in result.stderr
    gan_run = tmp_path / "gan"
    gan_run.mkdir()
    (gan_run / "config.json").write_text(json.dumps({"model": "dcgan"}))
    result = cli("translate", gan_run, "--input", tmp_path / "digits.npy", "--out", tmp_path / "bad.npy")
    assert result.returncode == 1 and "translate needs a cyclegan run" in result.stderr
