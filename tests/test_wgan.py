import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_tf
from gan_tf import hardware, losses, models
from gan_tf.config import ConfigError, TrainConfig
from gan_tf.steps import make_optimizer, wgan_train_step
from gan_tf.train import build, make_step, read_history, train


def _linear_critic(norm):
    """f(x) = w . x with ||w|| = norm: its gradient norm is exactly `norm` everywhere."""
    w = np.random.default_rng(0).normal(size=(28 * 28,)).astype(np.float32)
    w = tf.constant(norm * w / np.linalg.norm(w))
    return lambda x, training=False: tf.reduce_sum(tf.reshape(x, [-1, 28 * 28]) * w, axis=1)


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25), (0.0, 1.0)])
def test_gradient_penalty_on_functions_of_known_slope(norm, expected):
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (8, 28, 28, 1)), tf.float32)
    fake = tf.constant(rng.uniform(-1, 1, (8, 28, 28, 1)), tf.float32)
    alpha = tf.constant(rng.uniform(0, 1, (8, 1, 1, 1)), tf.float32)
    penalty = float(losses.gradient_penalty(_linear_critic(norm), real, fake, alpha))
    assert penalty == pytest.approx(expected, abs=1e-5)


def test_critic_and_generator_losses():
    real, fake = tf.constant([3.0, 1.0]), tf.constant([-1.0, 0.0])
    assert float(losses.critic_loss(real, fake)) == pytest.approx(-2.5)
    assert float(losses.generator_loss_wasserstein(fake)) == pytest.approx(0.5)


def _small_wgan(seed=0, rmsprop=False):
    keras.utils.set_random_seed(seed)
    g = models.make_generator(16, (32, 16, 8))
    c = models.make_discriminator(widths=(8, 16), dropout=0.0, name="critic")
    kind = "rmsprop" if rmsprop else "adam"
    return (g, c, make_optimizer(g, 1e-4, 0.0, 0.9, kind), make_optimizer(c, 1e-4, 0.0, 0.9, kind),
            tf.random.Generator.from_seed(seed))


def _batches(n_critic, batch=16, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n_critic * batch, 28, 28, 1)),
                       tf.float32)


def test_wgan_gp_step_updates_both_and_reports_estimates():
    g, c, g_opt, c_opt, rng = _small_wgan()
    before = [w.numpy().copy() for w in g.trainable_weights + c.trainable_weights]
    out = wgan_train_step(g, c, g_opt, c_opt, _batches(5), rng, n_critic=5, gp_weight=10.0)
    assert set(out) == {"d_loss", "g_loss", "wasserstein", "gradient_penalty"}
    assert float(out["gradient_penalty"]) > 0
    np.testing.assert_allclose(float(out["d_loss"]),
                               -float(out["wasserstein"]) + 10 * float(out["gradient_penalty"]),
                               rtol=1e-5)
    after = g.trainable_weights + c.trainable_weights
    changed = {a.path: not np.array_equal(b, a.numpy()) for b, a in zip(before, after)}
    # The critic's last bias shifts E[f(real)] and E[f(fake)] alike: no loss term can move it.
    assert changed.pop("logit/bias") is False
    assert all(changed.values())
    assert c_opt.iterations.numpy() == 5 and g_opt.iterations.numpy() == 1


def test_weight_clipping_keeps_the_critic_in_the_box():
    g, c, g_opt, c_opt, rng = _small_wgan(rmsprop=True)
    out = wgan_train_step(g, c, g_opt, c_opt, _batches(2), rng, n_critic=2, gp_weight=0.0,
                          clip_value=0.01)
    assert float(out["gradient_penalty"]) == 0.0
    assert max(float(tf.reduce_max(tf.abs(w))) for w in c.trainable_weights) <= 0.01


def test_wgan_step_traces_once():
    g, c, g_opt, c_opt, rng = _small_wgan()
    traces = wgan_train_step.experimental_get_tracing_count()
    for seed in range(3):
        wgan_train_step(g, c, g_opt, c_opt, _batches(2, seed=seed), rng, n_critic=2)
    assert wgan_train_step.experimental_get_tracing_count() == traces + 1


def test_one_policy_chooses_every_speed_up():
    """gan_tf.hardware.speedups decides for every model; notebook 03 and TrainConfig's None
    settings both go through it."""
    table = {
        ("CPU", (), False): {"mixed_precision": False, "jit_compile": True},   # TF's own kernels: XLA 1.3x
        ("CPU", (), True): {"mixed_precision": False, "jit_compile": False},   # oneDNN: XLA 0.87x
        ("GPU", ((8, 0),), True): {"mixed_precision": True, "jit_compile": True},
        ("GPU", ((6, 0),), False): {"mixed_precision": False, "jit_compile": True},  # no Tensor Cores
        ("GPU", ((8, 0), (6, 0)), False): {"mixed_precision": False, "jit_compile": True},
    }
    for (device, capabilities, onednn), expected in table.items():
        assert hardware.speedups(device, capabilities, onednn) == expected
        gpus = [{"compute_capability": c} for c in capabilities]
        chosen = hardware.choose_settings(gpus, onednn=onednn)
        assert chosen == {"device": device, **expected, "schedule": "full" if gpus else "reduced"}
        assert hardware.xla_pays_off(device, onednn) is expected["jit_compile"]
    for model in ("dcgan", "cgan", "wgan", "wgan_gp"):
        config = TrainConfig(model=model)
        assert config.jit_compile is None and config.mixed_precision is None  # left to the machine
        here = hardware.resolve(config)
        assert (here.jit_compile, here.mixed_precision) == (hardware.detect()["jit_compile"],
                                                            hardware.detect()["mixed_precision"])
    # bfloat16: only where oneDNN runs it on the CPU's own bfloat16 units.
    assert hardware.bfloat16_pays({"avx2", "avx512f", "avx512_bf16"}, onednn=True)
    assert hardware.bfloat16_pays({"avx2", "amx_bf16", "amx_tile"}, onednn=True)
    assert not hardware.bfloat16_pays({"avx2", "avx512f", "avx512_vnni"}, onednn=True)  # emulated
    assert not hardware.bfloat16_pays({"avx512_bf16"}, onednn=False)  # TensorFlow's own kernels
    on_cpu = hardware.detect()["device"] == "CPU"
    assert hardware.resolve(TrainConfig()).bfloat16 is (
        on_cpu and hardware.bfloat16_pays(hardware.cpu_flags(), hardware.onednn_enabled()))
    assert hardware.resolve(TrainConfig(bfloat16=False)).bfloat16 is False
    with pytest.raises(ConfigError, match="choose one"):
        TrainConfig(mixed_precision=True, bfloat16=True).validate()
    forced = hardware.resolve(TrainConfig(jit_compile=True, mixed_precision=True))
    assert forced.jit_compile is True and forced.mixed_precision is True
    assert hardware.jit_compile_for(True) is True and hardware.jit_compile_for(False) is False


def test_import_order_advice():
    advice = hardware.import_order_advice
    assert "Import gan_tf first" in advice(tensorflow_first=True, x86=True, onednn=False, user_setting=None)
    assert advice(tensorflow_first=False, x86=True, onednn=True, user_setting=None) is None
    # TensorFlow turned oneDNN on by itself (AVX-512 VNNI, AMX), the user chose, or not x86:
    assert advice(tensorflow_first=True, x86=True, onednn=True, user_setting=None) is None
    assert advice(tensorflow_first=True, x86=True, onednn=False, user_setting="0") is None
    assert advice(tensorflow_first=True, x86=False, onednn=False, user_setting=None) is None


def test_gradient_penalty_has_finite_gradients_where_the_critic_is_flat():
    """A critic whose input gradient is exactly zero (all-zero first layer): the penalty is 1 and
    its gradient with respect to the critic's weights must be finite. epsilon inside the square
    root is what makes it so: without it, d sqrt(s)/ds at s = 0 is infinite, times 0 is NaN."""
    keras.utils.set_random_seed(0)
    critic = models.make_discriminator(widths=(4, 8), dropout=0.0, name="critic")
    first = critic.trainable_variables[0]
    first.assign(tf.zeros_like(first))
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.uniform(-1, 1, (4, 28, 28, 1)), tf.float32) for _ in range(2))
    alpha = tf.constant(rng.uniform(0, 1, (4, 1, 1, 1)), tf.float32)
    for epsilon, finite in ((1e-12, True), (0.0, False)):
        with tf.GradientTape() as tape:
            penalty = losses.gradient_penalty(critic, real, fake, alpha, epsilon=epsilon)
        grads = tape.gradient(penalty, critic.trainable_variables)
        assert float(penalty) == pytest.approx(1.0, abs=1e-5)
        assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None) is finite


class _RecordingRng:
    """A tf.random.Generator stand-in that remembers what the step drew."""

    def __init__(self):
        self.rng, self.uniform_draws = tf.random.Generator.from_seed(0), []

    def normal(self, shape):
        return self.rng.normal(shape)

    def uniform(self, shape):
        values = self.rng.uniform(shape)
        self.uniform_draws.append(values.numpy())
        return values


def test_interpolation_weights_are_uniform_and_drawn_per_sample():
    g, c, g_opt, c_opt, _ = _small_wgan()
    rng = _RecordingRng()
    wgan_train_step.python_function(g, c, g_opt, c_opt, _batches(3, batch=400), rng, n_critic=3)
    assert len(rng.uniform_draws) == 3  # one draw per critic update
    alphas = np.concatenate([a.ravel() for a in rng.uniform_draws])
    assert all(a.shape == (400, 1, 1, 1) for a in rng.uniform_draws)  # one weight per image
    assert alphas.min() >= 0 and alphas.max() < 1
    # Uniform on [0, 1): mean 1/2, variance 1/12, every tenth of the range about equally often
    # (a normal draw, keras.io's slip, fails all three).
    assert abs(alphas.mean() - 0.5) < 0.03 and abs(alphas.var() - 1 / 12) < 0.01
    assert np.histogram(alphas, bins=10, range=(0, 1))[0].min() > 80


def _onednn_after(first_import, **env):
    """Whether TensorFlow ran with oneDNN in a fresh process that imported `first_import` first."""
    code = (f"import {first_import}, tensorflow\n"
            "from gan_tf import hardware\nprint(hardware.onednn_enabled())")
    clean = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**clean, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1] == "True"


@pytest.mark.skipif(not gan_tf.X86, reason="an x86 setting")
def test_importing_gan_tf_first_turns_onednn_on_unless_the_user_said_otherwise():
    assert _onednn_after("gan_tf") is True
    assert _onednn_after("gan_tf", TF_ENABLE_ONEDNN_OPTS="0") is False


def test_gpu_code_paths_run_on_cpu_too():
    """Mixed precision and XLA are for GPUs, but must not break where they are forced on a CPU."""
    config = TrainConfig(model="wgan_gp", mixed_precision=True, jit_compile=True, n_critic=2,
                         batch_size=8)
    checkpoint = build(config)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert checkpoint.generator.layers[1].dtype_policy.name == "mixed_float16"
    assert checkpoint.generator.output.dtype == "float32"  # tanh image kept in float32
    assert isinstance(checkpoint.d_optimizer, keras.optimizers.LossScaleOptimizer)
    out = make_step(config)(checkpoint, _batches(2, batch=8))
    assert all(np.isfinite(float(v)) for v in out.values())


def test_xla_step_computes_the_same_losses():
    """XLA draws its own random numbers, so values match in size, not digit for digit."""
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        config = TrainConfig(model="wgan_gp", jit_compile=jit, n_critic=2, batch_size=8)
        step, checkpoint = make_step(config), build(config)
        results.append([step(checkpoint, _batches(2, batch=8, seed=s)) for s in range(3)])
    for plain, xla in zip(*results):
        assert all(np.isfinite(float(v)) for v in xla.values())
        np.testing.assert_allclose(float(xla["d_loss"]),
                                   -float(xla["wasserstein"]) + 10 * float(xla["gradient_penalty"]),
                                   rtol=1e-5)
        # At the start the penalty dominates the critic's loss and hardly depends on the noise.
        np.testing.assert_allclose(float(xla["d_loss"]), float(plain["d_loss"]), rtol=0.02)


@pytest.mark.usefixtures("real_data_dir")
@pytest.mark.parametrize("model", ["wgan", "wgan_gp"])
def test_wasserstein_models_train_in_the_loop(tmp_path, model):
    config = TrainConfig(model=model, epochs=1, batch_size=32, limit=320, grid_size=4)
    history = train(config, tmp_path, verbose=0)
    assert history["epoch"] == [1]
    assert {"wasserstein", "gradient_penalty"} <= set(read_history(tmp_path / "history.csv"))
    assert (tmp_path / "samples" / "epoch_001.png").exists()
