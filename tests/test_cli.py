"""The command line end to end, as a learner runs it: in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def run(*args, env=None):
    """The CLI in a fresh process; a mistake that starts a long training fails at the timeout."""
    return subprocess.run([sys.executable, "-m", "gan_tf", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--batch-size", "512", "--limit", "300"], "batch_size 512 is larger than the 300"),
    (["--batch-size", "100000"], "larger than the 60000"),
    (["--dataset", "cifar10"], "unknown dataset 'cifar10': neither one of mnist, fashion_mnist nor"),
    (["--image-size", "64"], "mnist images are 28x28; --image-size is for image folders"),
    (["--augment", "color,flip"], "unknown augmentation 'flip'"),
    (["--lr", "0"], "learning_rate must be a positive"),
    (["--d-lr", "-1"], "d_learning_rate must be a positive"),
    (["--r1", "-1"], "r1_weight must be a number >= 0"),
    (["--categories", "1"], "categories must be 0 (off) or between 2 and latent_dim (100)"),
])
def test_impossible_training_settings_are_refused(tmp_path, args, message):
    result = run("train", "dcgan", "--out", tmp_path / "run", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_model_is_refused(tmp_path):
    result = run("train", "stylegan", "--out", tmp_path / "run")
    assert result.returncode == 2 and "invalid choice: 'stylegan'" in result.stderr


@pytest.mark.parametrize("make_folder, message", [
    (False, "the data folder {root} does not exist"),
    (True, "the data folder {root} has no mnist data"),
])
def test_a_data_folder_given_without_the_data_is_one_clear_error(tmp_path, make_folder, message):
    """An explicit --data-dir is the only folder searched: a typo must not train on other data
    (the fall-back chain would find the repo's data/ or $GAN_TF_DATA_DIR)."""
    root = tmp_path / "typo"
    if make_folder:
        root.mkdir()
    result = run("train", "dcgan", "--out", tmp_path / "run", "--data-dir", root, "--epochs", 1)
    assert result.returncode == 1
    assert "error: " + message.format(root=root) in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_train_then_sample(tmp_path, real_data_dir):
    out = tmp_path / "run"
    result = run("train", "dcgan", "--dataset", "mnist", "--epochs", 2, "--out", out,
                 "--batch-size", 64, "--limit", 300, "--seed", 1, "--data-dir", real_data_dir, "--no-xla")
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2" in result.stdout
    assert json.loads((out / "config.json").read_text())["jit_compile"] is False
    for name in ("samples/epoch_001.png", "samples/epoch_002.png", "progress.gif",
                 "history.csv", "generator.keras"):
        assert (out / name).is_file(), name

    result = run("sample", out, "--n", 10, "--out", tmp_path / "s.npy")
    assert result.returncode == 0, result.stderr
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0

    result = run("sample", out, "--n", 16, "--out", tmp_path / "grid.png")
    assert result.returncode == 0 and (tmp_path / "grid.png").stat().st_size > 0

    # Output to a pipe: one line per epoch, no progress-bar redraws.
    assert "step/s" not in result.stderr and "it/s" not in result.stderr
    # Resuming a finished run to more epochs continues its history. Options left out (here
    # --xla) continue as saved; a changed one is refused, and the record is never rewritten.
    saved = (out / "config.json").read_text()
    result = run("train", "dcgan", "--epochs", 3, "--out", out, "--batch-size", 64,
                 "--limit", 300, "--seed", 2, "--data-dir", real_data_dir, "--xla")
    assert result.returncode == 2
    assert "error: " in result.stderr
    assert "seed: saved 1, now 2; jit_compile: saved False, now True" in result.stderr
    assert (out / "config.json").read_text() == saved
    result = run("train", "dcgan", "--epochs", 3, "--out", out, "--batch-size", 64,
                 "--limit", 300, "--seed", 1, "--data-dir", real_data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "resumed from epoch 2" in result.stdout
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 3
    assert json.loads((out / "config.json").read_text()) == {**json.loads(saved), "epochs": 3}

    result = run("sample", out, "--n", 4, "--label", 3, "--out", tmp_path / "x.npy")
    assert result.returncode == 2 and "unconditional" in result.stderr and "train cgan" in result.stderr
    assert not (tmp_path / "x.npy").exists()


def test_train_conditional_then_sample_a_class(tmp_path, real_data_dir):
    out = tmp_path / "cgan"
    result = run("train", "cgan", "--epochs", 1, "--out", out, "--batch-size", 64, "--limit", 256,
                 "--eval-every", 0, "--data-dir", real_data_dir, "--quiet", "--lr-decay")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["lr_decay"] is True
    result = run("sample", out, "--n", 6, "--label", 7, "--out", tmp_path / "sevens.npy")
    assert result.returncode == 0, result.stderr
    assert "6 images of class 7" in result.stdout
    assert np.load(tmp_path / "sevens.npy").shape == (6, 28, 28, 1)
    assert np.load(tmp_path / "sevens.labels.npy").tolist() == [7] * 6  # for evaluate --labels
    for label in (10, -1):
        result = run("sample", out, "--n", 6, "--label", label, "--out", tmp_path / "bad.npy")
        assert result.returncode == 2 and f"label {label} is not a class" in result.stderr
        assert "0 to 9" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--n", "0", "--out", "x.npy"], "--n must be at least 1"),
    (["--n", "4", "--out", "x.jpg"], "must end in .npy or .png"),
])
def test_bad_sample_requests(tmp_path, args, message):
    tmp_path.joinpath("run").mkdir()
    result = run("sample", tmp_path / "run", *args)
    assert result.returncode != 0 and message in result.stderr


def test_sample_from_a_directory_that_was_never_trained(tmp_path):
    result = run("sample", tmp_path, "--n", 4, "--out", tmp_path / "x.npy")
    assert result.returncode == 1 and "has no checkpoint and no generator.keras" in result.stderr
    result = run("sample", tmp_path / "missing", "--n", 4, "--out", tmp_path / "x.npy")
    assert result.returncode == 2 and "is not a directory" in result.stderr
