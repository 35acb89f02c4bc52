"""Your own images (notebook 07): the folder loader, colour networks, DiffAugment, the folder
metrics on known cases, and a colour run trained, resumed and sampled from the command line."""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_tf import augment, data, folder_metrics, metrics, models
from gan_tf.config import ConfigError, TrainConfig


def run(*args):
    return subprocess.run([sys.executable, "-m", "gan_tf", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ))


@pytest.fixture(scope="session")
def emoji_dir():
    try:
        return data.example_folder("emoji")
    except data.DataError:
        pytest.skip("the emoji images are not where gan_tf looks (data/README.md)")


@pytest.fixture
def picture_folder(tmp_path):
    """One picture of every kind the loader must handle, and two files it must skip."""
    root = tmp_path / "pictures"
    (root / "nested" / "deeper").mkdir(parents=True)
    clear = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent red: must become white
    clear.save(root / "transparent.png")
    wide = Image.new("RGB", (90, 30), (255, 0, 0))  # red | blue | red: the centre square is blue
    wide.paste((0, 0, 255), (30, 0, 60, 30))
    wide.save(root / "nested" / "wide.jpg", quality=95)
    Image.new("L", (64, 64), 128).save(root / "nested" / "deeper" / "grey.webp", lossless=True)
    Image.new("P", (20, 20), 3).save(root / "palette.PNG")
    (root / "broken.png").write_bytes(b"not a picture at all")
    (root / "notes.txt").write_text("not an image suffix: never opened")
    return root


def test_loader_reads_every_kind_in_colour_and_names_the_broken_file(picture_folder):
    warnings = []
    images = data.load_folder(picture_folder, 32, log=warnings.append)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    by_mean = sorted(images.reshape(4, -1, 3).mean(1).round().tolist())
    assert [255, 255, 255] in by_mean  # transparent -> white background
    assert [128, 128, 128] in by_mean  # grey -> the same grey in all three channels
    blue = next(m for m in by_mean if m[2] > 200 and m[0] < 50)  # the centre third of the wide image
    assert blue[0] < 10 and blue[1] < 10
    assert len(warnings) == 1 and "skipped 1 of 5 files" in warnings[0] and "broken.png" in warnings[0]


def test_loader_limit_takes_a_fixed_sample_and_bad_folders_are_clear_errors(picture_folder, tmp_path):
    first = data.list_images(picture_folder)
    assert first == data.list_images(picture_folder) and len(first) == 5  # the .txt is not listed
    expected = [data.read_image(p, 32) for p in first[:2] if p.name != "broken.png"]
    limited = data.load_folder(picture_folder, 32, limit=2, log=lambda m: None)
    np.testing.assert_array_equal(limited, np.stack(expected))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(data.DataError, match="holds no images"):
        data.load_folder(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(data.DataError, match="none of the 1 image files"):
        data.load_folder(tmp_path / "junk", log=lambda m: None)
    with pytest.raises(data.DataError, match="image size 48 is not supported"):
        data.load_folder(picture_folder, 48)


def test_folder_settings_are_checked(picture_folder, tmp_path):
    config = TrainConfig(dataset=str(picture_folder)).validate(100)
    assert config.image_size == 64 and config.image_shape == (64, 64, 3)
    assert config.dataset == str(picture_folder.resolve())
    assert TrainConfig(augment=" cutout , color").validate().augment == "cutout,color"
    for settings, message in [
        (dict(model="cgan"), "cgan needs class labels; an image folder has neither"),
        (dict(model="cyclegan"), "cyclegan needs two datasets"),
        (dict(image_size=48), "image_size must be one of 32, 64"),
        (dict(augment="color,zoom"), "unknown augmentation 'zoom'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(dataset=str(picture_folder), **settings).validate(100)
    with pytest.raises(ConfigError, match="mnist images are 28x28"):
        TrainConfig(image_size=64).validate()
    assert config.upsampling == "resize" and config.width == models.COLOUR_WIDTH == 32
    assert TrainConfig(dataset=str(picture_folder), width=64).validate(100).width == 64
    for width in (0, 2.5):
        with pytest.raises(ConfigError, match=f"width must be a whole number of at least 1, got {width}"):
            TrainConfig(dataset=str(picture_folder), width=width).validate(100)
    for width in (0, 2.5):  # the 28x28 networks take a width too, checked the same way
        with pytest.raises(ConfigError, match=rf"got {width} \(default: 64\)"):
            TrainConfig(width=width).validate()
    with pytest.raises(ConfigError, match="--width is for the GANs that draw from noise"):
        TrainConfig(model="cyclegan", width=32).validate()
    paper = TrainConfig(dataset=str(picture_folder), upsampling="transposed").validate(100)
    assert paper.upsampling == "transposed"
    with pytest.raises(ConfigError, match="unknown upsampling 'bilinear'"):
        TrainConfig(dataset=str(picture_folder), upsampling="bilinear").validate(100)
    with pytest.raises(ConfigError, match="--upsampling is for image folders"):
        TrainConfig(upsampling="resize").validate()
    with pytest.raises(ConfigError, match="nor an existing folder"):
        TrainConfig(dataset=str(tmp_path / "typo")).validate()


@pytest.mark.parametrize("size", [32, 64])
def test_colour_networks_follow_the_image_size(size):
    g = models.make_generator(image_shape=(size, size, 3), width=8)
    d = models.make_discriminator(image_shape=(size, size, 3), width=8)
    images = g(np.zeros((2, 100), np.float32), training=False)
    assert images.shape == (2, size, size, 3) and d(images, training=False).shape == (2, 1)
    # one doubling per stage in G (4x4 -> size), one stride-2 halving per stage in D (size -> 4x4)
    assert len([x for x in g.layers if "up_sampling2d" in x.name]) == (4 if size == 64 else 3)
    assert len([x for x in d.layers if "conv2d" in x.name]) == (4 if size == 64 else 3)
    with pytest.raises(ValueError, match="image_shape must be"):
        models.make_generator(image_shape=(48, 48, 3))


@pytest.mark.parametrize("size", [32, 64])
def test_transposed_upsampling_is_the_papers_generator(size):
    g = models.make_generator(image_shape=(size, size, 3), width=8, upsampling="transposed")
    assert g(np.zeros((2, 100), np.float32), training=False).shape == (2, size, size, 3)
    transposed = [x for x in g.layers if isinstance(x, keras.layers.Conv2DTranspose)]
    assert len(transposed) == (4 if size == 64 else 3)
    assert all(x.strides == (2, 2) and x.kernel_size == (4, 4) for x in transposed)
    assert not [x for x in g.layers if "up_sampling2d" in x.name]
    with pytest.raises(ValueError, match="upsampling must be"):
        models.make_generator(image_shape=(32, 32, 3), upsampling="bilinear")


def test_a_folder_run_saved_before_upsampling_and_width_were_settings_resumes_as_it_trained(picture_folder):
    from gan_tf.config import resumed

    config = TrainConfig(dataset=str(picture_folder), image_size=32, limit=8, batch_size=4).validate(100)
    newer = ("upsampling", "width")
    saved = {key: value for key, value in dataclasses.asdict(config).items() if key not in newer}
    again = resumed(config, saved, "old_run")
    assert again.upsampling == "resize" and again.width == 32
    with pytest.raises(ConfigError, match="width: saved 32, now 64"):
        resumed(TrainConfig(dataset=str(picture_folder), image_size=32, limit=8, batch_size=4,
                            width=64).validate(100), saved, "old_run")
    with pytest.raises(ConfigError, match="upsampling: saved 'resize', now 'transposed'"):
        resumed(TrainConfig(dataset=str(picture_folder), image_size=32, limit=8, batch_size=4,
                            upsampling="transposed").validate(100), saved, "old_run")


# --- DiffAugment ---------------------------------------------------------------------------

def test_translation_moves_a_dot_by_at_most_an_eighth_and_fills_with_zero():
    images = np.full((200, 16, 16, 1), -1.0, np.float32)
    images[:, 8, 8] = 1.0
    shifted = augment.translation(tf.constant(images), tf.random.Generator.from_seed(1)).numpy()
    assert (shifted == 1.0).sum(axis=(1, 2, 3)).tolist() == [1] * 200  # the dot survives, once
    where = np.argwhere(shifted[..., 0] == 1.0)[:, 1:] - 8
    assert np.abs(where).max() == 2 and len({tuple(w) for w in where}) > 15  # up to 16/8 px, many shifts
    assert (shifted == 0).any()  # pixels moved in from outside are 0


def test_cutout_blanks_a_square_of_half_the_side_and_colour_keeps_shapes():
    images = tf.ones((100, 16, 16, 3))
    cut = augment.cutout(images, tf.random.Generator.from_seed(2)).numpy()
    holes = (cut == 0).all(-1).sum(axis=(1, 2))
    assert holes.max() == 64 and holes.min() >= 16  # 8x8 inside; at least a quarter near a corner
    coloured = augment.color(images, tf.random.Generator.from_seed(3)).numpy()
    assert coloured.shape == images.shape and coloured.std() > 0.1


def test_diff_augment_lets_gradients_through_and_compiles_with_xla():
    x = tf.Variable(tf.random.uniform((4, 32, 32, 3), -1, 1, seed=0))
    rng = tf.random.Generator.from_seed(0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment.diff_augment(x, rng) ** 2)
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
    np.testing.assert_array_equal(augment.diff_augment(x, rng, "").numpy(), x.numpy())
    compiled = tf.function(lambda t: augment.diff_augment(t, rng), jit_compile=True)
    assert compiled(x).shape == x.shape


# --- scores in the folder's own features ---------------------------------------------------

def test_kernel_distance_is_unbiased_and_sees_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((800, 16)), rng.standard_normal((800, 16))
    same, spread = folder_metrics.kernel_distance(a, b, subset=400, subsets=10)
    assert abs(same) < 3 * spread + 1e-3  # same distribution: 0 within its noise
    shifted, _ = folder_metrics.kernel_distance(a, b + 0.5, subset=400, subsets=10)
    assert shifted > 20 * max(abs(same), spread)


def test_nearest_neighbours_finds_copies():
    reference = np.random.default_rng(0).uniform(-1, 1, (50, 8, 8, 3)).astype(np.float32)
    index, distance = folder_metrics.nearest_neighbours(reference[[7, 3]] + 0.0, reference)
    assert index.tolist() == [7, 3] and np.allclose(distance, 0, atol=1e-3)


def test_folder_scores_order_real_blurred_noise_and_see_one_repeated_image(emoji_dir):
    # The first 600 emoji at 32x32 are also notebook 07's quick setting and the benchmark smoke
    # test's reference: one encoder, trained once into $GAN_TF_CACHE_DIR, serves all three.
    images = data.load_folder(emoji_dir, 32, limit=600)
    evaluator = folder_metrics.FolderEvaluator(images=images, log=lambda m: None)
    assert evaluator.accuracy > 0.4  # the rotation is learned (chance: 0.25)
    held = data.to_unit_range(evaluator.held_out)
    blurred = tf.nn.avg_pool2d(held, 3, 1, "SAME").numpy()
    noise = np.random.default_rng(0).uniform(-1, 1, held.shape).astype(np.float32)
    scores = {name: evaluator.evaluate(x) for name, x in
              [("real", held), ("blurred", blurred), ("noise", noise), ("one", np.repeat(held[:1], 300, 0))]}
    kid = {name: s["kid"] for name, s in scores.items()}
    assert abs(kid["real"]) < kid["blurred"] / 5 and kid["blurred"] < kid["noise"]
    assert scores["real"]["coverage"] > 0.8 and scores["one"]["coverage"] < 0.1
    assert evaluator.real_floor()["kid"] == kid["real"]
    # The encoder is cached under a fingerprint of the pixels: a second evaluator loads it.
    cached = metrics.cache_dir() / "encoders" / f"encoder_{folder_metrics.folder_key(images)}.weights.h5"
    assert cached.exists()
    again = folder_metrics.FolderEvaluator(images=images, log=lambda m: pytest.fail(f"trained again: {m}"))
    assert again.accuracy == evaluator.accuracy


# --- a colour run from the command line ----------------------------------------------------

def test_train_resume_sample_and_evaluate_a_colour_run(emoji_dir, tmp_path):
    out = tmp_path / "emoji"
    common = ["--dataset", emoji_dir, "--image-size", 32, "--limit", 192, "--batch-size", 32, "--out", out,
              "--augment", "--no-xla"]
    first = run("train", "dcgan", "--epochs", 1, *common)
    assert first.returncode == 0, first.stderr
    assert json.loads((out / "config.json").read_text())["augment"] == "color,translation,cutout"
    second = run("train", "dcgan", "--epochs", 2, *common)
    assert second.returncode == 0, second.stderr
    assert "resumed from epoch 1" in second.stdout and "epoch 2/2" in second.stdout
    grid = Image.open(out / "samples" / "epoch_002.png")
    assert grid.mode == "RGB" and (out / "progress.gif").exists() and (out / "generator.keras").exists()
    changed = run("train", "dcgan", "--epochs", 3, *common[:-2], "--augment", "color", "--no-xla")
    assert changed.returncode == 2
    assert "augment: saved 'color,translation,cutout', now 'color'" in changed.stderr
    paper = run("train", "dcgan", "--epochs", 3, *common, "--upsampling", "transposed")
    assert paper.returncode == 2 and "upsampling: saved 'resize', now 'transposed'" in paper.stderr
    wide = run("train", "dcgan", "--epochs", 3, *common, "--width", 64)
    assert wide.returncode == 2 and "width: saved 32, now 64" in wide.stderr

    sampled = run("sample", out, "--n", 5, "--out", tmp_path / "s.npy")
    assert sampled.returncode == 0, sampled.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 32, 32, 3) and samples.min() >= -1 and samples.max() <= 1
    flat = run("evaluate", tmp_path / "s.npy", "--dataset", emoji_dir)
    assert flat.returncode == 2 and "need more than 5 images" in flat.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((20, 28, 28, 1), np.float32))
    wrong = run("evaluate", tmp_path / "wrong.npy", "--dataset", emoji_dir)
    assert wrong.returncode == 2 and "images must be N x S x S x 3" in wrong.stderr


def test_wgan_gp_trains_on_a_folder_with_diff_augment_at_its_own_width(emoji_dir, tmp_path):
    from gan_tf.runlog import load_config
    from gan_tf.sampling import load_generator, newest_state
    from gan_tf.train import train

    config = TrainConfig(model="wgan_gp", dataset=str(emoji_dir), image_size=32, limit=96, batch_size=8,
                         epochs=1, augment="color,translation,cutout", jit_compile=False, log_every=1,
                         width=8)
    history = train(config, tmp_path / "wgan_gp", verbose=0)
    assert history["epoch"] == [1] and np.isfinite(history["d_loss"]).all()
    assert Image.open(tmp_path / "wgan_gp" / "samples" / "epoch_001.png").mode == "RGB"
    # the width is saved with the run, and the networks rebuilt from it are the narrow ones
    state = newest_state(tmp_path / "wgan_gp", load_config(tmp_path / "wgan_gp"))
    for net, make in [(state.generator, models.make_generator),
                      (state.discriminator, models.make_discriminator)]:
        narrow, default = (make(image_shape=(32, 32, 3), width=w).count_params() for w in (8, 32))
        assert net.count_params() == narrow < default
    drawn = load_generator(tmp_path / "wgan_gp")(np.zeros((2, 100), np.float32), training=False)
    assert drawn.shape == (2, 32, 32, 3)


def test_folder_errors_on_the_command_line(picture_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = run("train", "dcgan", "--dataset", tmp_path / "empty", "--epochs", 1, "--out", tmp_path / "run")
    assert empty.returncode == 1 and "holds no images" in empty.stderr and "Traceback" not in empty.stderr
    cgan = run("train", "cgan", "--dataset", picture_folder, "--out", tmp_path / "run")
    assert cgan.returncode == 2 and "cgan needs class labels" in cgan.stderr
    big = run("train", "dcgan", "--dataset", picture_folder, "--image-size", 32, "--out", tmp_path / "run")
    assert big.returncode == 2 and "batch_size 16 is larger than the 4 training images" in big.stderr
    digits = run("train", "dcgan", "--upsampling", "transposed", "--out", tmp_path / "run")
    assert digits.returncode == 2 and "--upsampling is for image folders" in digits.stderr
