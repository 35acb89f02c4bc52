"""Training on several devices (gan_tf.distribute): the decisions, and real runs over two logical
CPU devices and over two worker processes on this machine."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_cli import run

from gan_tf import distribute
from gan_tf.config import ConfigError, TrainConfig

TESTS = Path(__file__).parent


def test_mirrored_uses_every_gpu_else_every_cpu_device():
    assert distribute.mirrored_devices(["/gpu:0", "/gpu:1"], ["/cpu:0"]) == ["/gpu:0", "/gpu:1"]
    assert distribute.mirrored_devices([], ["/cpu:0", "/cpu:1"]) == ["/cpu:0", "/cpu:1"]


@pytest.mark.parametrize("task_type, task_id, cluster, chief", [
    (None, None, {}, True),  # one process
    ("worker", 0, {"worker": ["a", "b"]}, True),  # no chief task: worker 0 is it
    ("worker", 1, {"worker": ["a", "b"]}, False),
    ("chief", 0, {"chief": ["a"], "worker": ["b"]}, True),
    ("worker", 0, {"chief": ["a"], "worker": ["b"]}, False),  # a named chief takes the job
])
def test_only_the_chief_writes(task_type, task_id, cluster, chief):
    assert distribute.is_chief(task_type, task_id, cluster) is chief


def test_the_global_batch_must_split_evenly():
    assert distribute.per_replica_batch(64, 2) == 32
    with pytest.raises(ConfigError, match="--batch-size 63 does not split evenly across 2 replicas"):
        distribute.per_replica_batch(63, 2)


@pytest.mark.parametrize("model", ["wgan", "cyclegan"])
def test_models_whose_step_cannot_be_replicated_are_refused(model):
    with pytest.raises(ConfigError, match="--strategy mirrored is for dcgan, cgan, wgan_gp"):
        TrainConfig(model=model, strategy="mirrored").validate()


def test_xla_stays_off_under_a_strategy():
    """Keras turns XLA off under tf.distribute; gan_tf does the same, and refuses --xla there (it
    failed here: one XLA program cannot reach the variables of two devices)."""
    from gan_tf import hardware

    assert hardware.resolve(TrainConfig(strategy="mirrored").validate()).jit_compile is False
    with pytest.raises(ConfigError, match="--xla is not supported with --strategy mirrored"):
        TrainConfig(strategy="mirrored", jit_compile=True).validate()


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ConfigError, match="unknown strategy 'horovod'"):
        TrainConfig(strategy="horovod").validate()


def test_critic_batches_are_regrouped_so_each_replica_gets_its_rows_of_every_batch():
    """n_critic=2 batches of 4 rows on 2 replicas: replica 0 must get rows 0-1 (batch 0) and
    4-5 (batch 1), replica 1 rows 2-3 and 6-7; the strategy cuts the global batch in halves."""
    images = tf.reshape(tf.range(8.0), [8, 1, 1, 1])
    regrouped = distribute.critic_rows_by_replica(images, n_critic=2, replicas=2)
    assert regrouped.numpy().ravel().tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert distribute.critic_rows_by_replica(images, 2, 1) is images


def test_replica_noise_on_one_device_draws_the_whole_batch():
    noise = distribute.ReplicaNoise(tf.constant([1, 2], tf.int64))
    first = noise.normal([3, 2])
    assert first.shape == (3, 2)
    assert not np.allclose(first, noise.normal([3, 2]))  # each draw its own stream
    shifts = noise.uniform([5], -2, 3, dtype=tf.int64).numpy()
    assert shifts.min() >= -2 and shifts.max() < 3


def replica_check(*args):
    """tests/replica_check.py in its own process (the CPU is split into two devices there)."""
    result = subprocess.run([sys.executable, str(TESTS / "replica_check.py"), *map(str, args)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model, options", [("dcgan", []), ("wgan_gp", ["--sgd"])])
def test_two_replicas_train_as_one_device_does(real_data_dir, model, options):
    """6 steps of the same global batch (32) with the same batches and noise, on one replica and
    split over two. They may differ only by float32 rounding (the gradients of two half batches
    are summed in another order). The tolerance is measured, not guessed: the same run on one
    device with every weight changed by one rounding step (2^-23) drifts this far. A wrongly
    scaled gradient (e.g. the replicas' mean losses not divided by 2) would move the weights as
    far as training itself does. dcgan runs with its Adam (the dropout rate set to 0: Keras draws
    masks per replica); wgan_gp with plain SGD, since Adam would hide a wrong gradient scale."""
    gaps = replica_check(model, 6, *options)
    assert gaps["weights_moved"] > 1e-2  # training did move the weights
    assert gaps["weight_gap"] <= 3 * gaps["nudged_weight_gap"] + 1e-6, gaps
    assert max(gaps["loss_gap"]) <= 3 * max(gaps["nudged_loss_gap"]) + 1e-6, gaps
    # Rounding-sized, whatever the nudge: a wrong gradient scale moves the weights by a share of
    # order 1 of what training moved them. Rounding alone reached 0.0039 of it on an AVX2-only
    # AMD EPYC (family 23), within the measured nudge; 1e-3 failed there.
    assert gaps["weight_gap"] < 2e-2 * gaps["weights_moved"]


def history(out):
    with open(out / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_mirrored_cgan_trains_resumes_on_one_device_and_samples(tmp_path, real_data_dir):
    out, two_cpus = tmp_path / "run", {"GAN_TF_CPU_DEVICES": "2"}
    result = run("train", "cgan", "--strategy", "mirrored", "--epochs", 1, "--limit", 320, "--out", out,
                 "--data-dir", real_data_dir, "--eval-every", 0, env=two_cpus)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored strategy: 2 replicas, global batch 64 = 2 x 32 per replica" in result.stdout
    # The same run goes on without a strategy (the multi-worker test resumes under one).
    result = run("train", "cgan", "--epochs", 2, "--limit", 320, "--out", out, "--data-dir", real_data_dir,
                 "--eval-every", 0)
    assert result.returncode == 0 and "resumed from epoch 1" in result.stdout, result.stderr[-3000:]
    rows = history(out)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(np.isfinite(float(row["d_loss"])) for row in rows)
    assert json.loads((out / "config.json").read_text())["strategy"] == "default"
    assert len(list((out / "samples").glob("epoch_*.png"))) == 2
    result = run("sample", out, "--n", 20, "--out", tmp_path / "s.npy")
    assert result.returncode == 0, result.stderr[-3000:]
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (20, 28, 28, 1) and np.all(np.abs(images) <= 1)
    assert images.std(axis=0).mean() > 0  # 10 steps in: not yet digits, but one image per noise vector


def test_an_uneven_batch_is_refused_before_training(tmp_path, real_data_dir):
    out = tmp_path / "run"
    result = run("train", "wgan_gp", "--strategy", "mirrored", "--batch-size", 33, "--epochs", 1,
                 "--limit", 330, "--out", out, "--data-dir", real_data_dir, env={"GAN_TF_CPU_DEVICES": "2"})
    assert result.returncode == 2
    assert "error: --batch-size 33 does not split evenly across 2 replicas" in result.stderr
    assert not (out / "checkpoints").exists()


def test_multi_worker_needs_a_valid_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="--strategy multi-worker needs TF_CONFIG"):
        distribute.make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{'cluster': ")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        distribute.make_strategy("multi-worker")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_workers(out, data_dir, epochs):
    """The same command on two worker processes of one cluster on this machine."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    command = [sys.executable, "-m", "gan_tf", "train", "dcgan", "--strategy", "multi-worker", "--quiet",
               "--limit", "256", "--batch-size", "64", "--epochs", str(epochs), "--out", str(out),
               "--data-dir", data_dir]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={
        **os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


def test_two_workers_train_and_resume(tmp_path, real_data_dir):
    """MultiWorkerMirroredStrategy with two processes talking over 127.0.0.1: both run every step
    (the losses they print agree), only the chief (worker 0) writes the run directory, and a
    second command resumes from its checkpoint."""
    out = tmp_path / "run"
    chief, worker = two_workers(out, real_data_dir, epochs=1)
    assert "multi-worker strategy: 2 replicas on 2 workers, global batch 64 = 2 x 32 per replica" in chief
    last_line = [line for line in chief.splitlines() if line.startswith("epoch 1/1")][0]
    assert last_line.split("  ")[:2] == [line for line in worker.splitlines()
                                         if line.startswith("epoch 1/1")][0].split("  ")[:2]
    assert "the chief wrote" in worker
    chief, worker = two_workers(out, real_data_dir, epochs=2)
    assert "resumed from epoch 1" in chief and "resumed from epoch 1" in worker
    assert [row["epoch"] for row in history(out)] == ["1", "2"]
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index")) == ["ckpt-1.index", "ckpt-2.index"]
    assert (out / "generator.keras").exists()
