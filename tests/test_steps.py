import numpy as np
import tensorflow as tf

from gan_tf import models
from gan_tf.steps import gan_train_step, make_optimizer


def _small_gan(seed=0):
    tf.keras.utils.set_random_seed(seed)
    generator = models.make_generator(16, (32, 16, 8))
    discriminator = models.make_discriminator(widths=(8, 16))
    return (generator, discriminator, make_optimizer(generator, 1e-3),
            make_optimizer(discriminator, 1e-3), tf.random.Generator.from_seed(seed))


def _batch(seed, n=32):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, 28, 28, 1)), tf.float32)


def test_step_changes_both_networks_and_returns_losses():
    g, d, g_opt, d_opt, rng = _small_gan()
    before = [w.numpy().copy() for w in g.trainable_weights + d.trainable_weights]
    losses = gan_train_step(g, d, g_opt, d_opt, _batch(0), rng)
    assert set(losses) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v.numpy()) for v in losses.values())
    after = [w.numpy() for w in g.trainable_weights + d.trainable_weights]
    n_g = len(g.trainable_weights)
    assert all(not np.array_equal(a, b) for a, b in zip(before[:n_g], after[:n_g]))
    assert all(not np.array_equal(a, b) for a, b in zip(before[n_g:], after[n_g:]))


def test_discriminator_loss_falls_on_a_fixed_batch():
    g, d, g_opt, d_opt, rng = _small_gan()
    # A fixed "real" batch with structure (a bright square on black) that D can learn quickly.
    square = -np.ones((32, 28, 28, 1), np.float32)
    square[:, 8:20, 8:20] = 1.0
    real = tf.constant(square)
    d_losses = [float(gan_train_step(g, d, g_opt, d_opt, real, rng)["d_loss"]) for _ in range(25)]
    assert np.mean(d_losses[-5:]) < 0.8 * np.mean(d_losses[:5]), d_losses


def test_traced_once_for_many_batches():
    g, d, g_opt, d_opt, rng = _small_gan()
    traces = gan_train_step.experimental_get_tracing_count()
    for seed in range(5):
        gan_train_step(g, d, g_opt, d_opt, _batch(seed), rng)
    assert gan_train_step.experimental_get_tracing_count() == traces + 1


def test_same_seed_same_losses():
    runs = []
    for _ in range(2):
        g, d, g_opt, d_opt, rng = _small_gan(seed=3)
        runs.append([float(gan_train_step(g, d, g_opt, d_opt, _batch(s), rng)["g_loss"])
                     for s in range(3)])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)


def test_r1_penalty_changes_only_the_discriminator_update():
    results = {}
    for weight in (0.0, 10.0):
        g, d, g_opt, d_opt, rng = _small_gan(seed=4)
        losses = gan_train_step(g, d, g_opt, d_opt, _batch(0), rng, "non_saturating", weight)
        results[weight] = (losses, [w.numpy() for w in d.trainable_weights],
                           [w.numpy() for w in g.trainable_weights])
    # Same forward pass, so the same reported losses; the penalty only enters D's gradient.
    np.testing.assert_allclose(results[0.0][0]["d_loss"], results[10.0][0]["d_loss"], rtol=1e-6)
    assert not np.allclose(results[0.0][1][0], results[10.0][1][0])
    np.testing.assert_allclose(results[0.0][2][0], results[10.0][2][0], rtol=1e-6)
