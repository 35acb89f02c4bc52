"""The command line end to end, as a learner runs it: in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gan_tf


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gan_tf", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def test_help_explains_every_option():
    train_help = run("train", "--help").stdout
    for option in ("--dataset", "--epochs", "--out", "--batch-size", "--limit", "--seed",
                   "--data-dir", "--lr", "--loss", "--latent-dim", "--ema", "--eval-every"):
        assert option in train_help
    assert "resumes" in train_help.lower()
    sample_help = run("sample", "--help").stdout
    assert "--n" in sample_help and ".npy" in sample_help and ".png" in sample_help
    assert "--label" in sample_help and "cgan" in sample_help


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--batch-size", "512", "--limit", "300"], "batch_size 512 is larger than the 300"),
    (["--batch-size", "100000"], "larger than the 60000"),
    (["--dataset", "cifar10"], "invalid choice: 'cifar10'"),
    (["--lr", "0"], "learning_rate must be a positive"),
])
def test_impossible_training_settings_are_refused(tmp_path, args, message):
    result = run("train", "dcgan", "--out", tmp_path / "run", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_model_is_refused(tmp_path):
    result = run("train", "stylegan", "--out", tmp_path / "run")
    assert result.returncode == 2 and "invalid choice: 'stylegan'" in result.stderr


def test_missing_data_is_one_clear_error(tmp_path):
    result = run("train", "dcgan", "--out", tmp_path / "run", "--data-dir", tmp_path / "nowhere",
                 env={"GAN_TF_DATA_DIR": str(tmp_path / "also_nowhere"), "GAN_TF_OFFLINE": "1"})
    assert result.returncode == 1
    assert "error: no mnist data found" in result.stderr
    assert str(tmp_path / "nowhere" / "mnist") in result.stderr
    assert "Traceback" not in result.stderr


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

    # Resuming a finished run to more epochs continues its history.
    result = run("train", "dcgan", "--epochs", 3, "--out", out, "--batch-size", 64,
                 "--limit", 300, "--seed", 1, "--data-dir", real_data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "resumed from epoch 2" in result.stdout
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 3
    # XLA changes how the step runs, not what the checkpoint holds: the default resumes it, and
    # config.json records the default's choice: no XLA on an x86 CPU, where gan_tf turns oneDNN
    # on unless the environment says otherwise (gan_tf.hardware.xla_pays_off).
    onednn = gan_tf.X86 and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() in ("1", "true")
    assert json.loads((out / "config.json").read_text())["jit_compile"] is (not onednn)

    result = run("sample", out, "--n", 4, "--label", 3, "--out", tmp_path / "x.npy")
    assert result.returncode == 2 and "unconditional" in result.stderr and "train cgan" in result.stderr
    assert not (tmp_path / "x.npy").exists()


def test_train_conditional_then_sample_a_class(tmp_path, real_data_dir):
    out = tmp_path / "cgan"
    result = run("train", "cgan", "--epochs", 1, "--out", out, "--batch-size", 64, "--limit", 256,
                 "--eval-every", 0, "--data-dir", real_data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    result = run("sample", out, "--n", 6, "--label", 7, "--out", tmp_path / "sevens.npy")
    assert result.returncode == 0, result.stderr
    assert "6 images of class 7" in result.stdout
    assert np.load(tmp_path / "sevens.npy").shape == (6, 28, 28, 1)
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
