import numpy as np
import pytest
import tensorflow as tf

from gan_tf import models
from gan_tf.steps import gan_train_step, make_optimizer, update_moving_average


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


def test_conditional_step_trains_both_label_embeddings():
    """The labels reach both networks: one step moves the rows of the classes in the batch only."""
    tf.keras.utils.set_random_seed(5)
    g = models.make_generator(16, (32, 16, 8), num_classes=3)
    d = models.make_discriminator(widths=(8, 16), num_classes=3)
    g_opt, d_opt = make_optimizer(g, 1e-3), make_optimizer(d, 1e-3)
    tables = [net.get_layer("label_embedding").embeddings for net in (g, d)]
    before = [t.numpy().copy() for t in tables]
    labels = tf.constant(np.arange(32, dtype=np.int32) % 2)  # classes 0 and 1, never 2
    losses = gan_train_step(g, d, g_opt, d_opt, _batch(0), tf.random.Generator.from_seed(5),
                            labels=labels)
    assert np.isfinite(float(losses["d_loss"])) and np.isfinite(float(losses["g_loss"]))
    for old, table in zip(before, tables):
        new = table.numpy()
        assert not np.allclose(old[:2], new[:2])
        np.testing.assert_array_equal(old[2], new[2])


def _spread(generator, label=0, n=64):
    """Mean absolute difference between images of one class drawn from different noise."""
    z = np.random.default_rng(9).normal(size=(2 * n, models.latent_dim_of(generator))).astype("float32")
    images = generator([z, np.full(2 * n, label, np.int32)], training=True).numpy()  # batch statistics
    return float(np.abs(images[:n] - images[n:]).mean())


def test_mode_seeking_term_spreads_the_images_of_one_class():
    """Same seed, same batches; only the term's weight differs. The term rewards images of one
    class that differ where their noise does, so after a few steps they differ more."""
    spreads = []
    for weight in (0.0, 1.0):
        tf.keras.utils.set_random_seed(7)
        g = models.make_generator(16, (32, 16, 8), num_classes=3)
        d = models.make_discriminator(widths=(8, 16), num_classes=3)
        g_opt, d_opt, rng = make_optimizer(g, 1e-3), make_optimizer(d, 1e-3), tf.random.Generator.from_seed(7)
        labels = tf.constant(np.arange(32, dtype=np.int32) % 3)
        for s in range(10):
            losses = gan_train_step(g, d, g_opt, d_opt, _batch(s), rng, labels=labels, mode_seeking=weight)
        assert np.isfinite(float(losses["g_loss"]))
        spreads.append(_spread(g))
    # Without the term both runs would be identical (same seed): ratio 1. Measured here: 1.36.
    assert spreads[1] > 1.2 * spreads[0], spreads


def test_moving_average_follows_the_weights_slowly():
    tf.keras.utils.set_random_seed(6)
    model = models.make_generator(4, (8, 8, 4))
    average = tf.keras.models.clone_model(model)
    average.set_weights([np.zeros_like(w) for w in model.get_weights()])
    # Late in a run the rate is the decay itself: one update moves 1% of the way.
    update_moving_average(average, model, tf.constant(0.99), tf.constant(10_000, tf.int64))
    for slow, fast in zip(average.get_weights(), model.get_weights()):
        np.testing.assert_allclose(slow, 0.01 * fast, rtol=1e-4, atol=1e-7)
    # At step 0 the warm-up rate 1/10 applies: 90% of the way at once.
    average.set_weights([np.zeros_like(w) for w in model.get_weights()])
    update_moving_average(average, model, tf.constant(0.99), tf.constant(0, tf.int64))
    for slow, fast in zip(average.get_weights(), model.get_weights()):
        np.testing.assert_allclose(slow, 0.9 * fast, rtol=1e-4, atol=1e-7)



def _generator_moves(conditional, policy_name, steps=3):
    """How far three training steps move a small generator's weights (L2 norm of the change)
    under a Keras dtype policy; float16 needs loss scaling."""
    tf.keras.utils.set_random_seed(0)
    classes = 10 if conditional else 0
    policy = tf.keras.config.dtype_policy()
    tf.keras.config.set_dtype_policy(policy_name)
    try:  # layers take the policy in force when they are built, as gan_tf.checkpoints.build does
        g = models.make_generator(16, (32, 16, 8), num_classes=classes)
        d = models.make_discriminator(widths=(8, 16), num_classes=classes)
    finally:
        tf.keras.config.set_dtype_policy(policy)
    g_opt, d_opt = (make_optimizer(net, 2e-4, 0.5, loss_scaling=policy_name == "mixed_float16")
                    for net in (g, d))
    rng = tf.random.Generator.from_seed(0)
    before = [w.numpy().astype(np.float64) for w in g.trainable_weights]
    labels = {"labels": tf.constant(np.arange(16) % 10, tf.int32)} if conditional else {}
    for seed in range(steps):
        gan_train_step(g, d, g_opt, d_opt, _batch(seed, n=16), rng, **labels)
    return np.sqrt(sum(np.sum((w.numpy() - b) ** 2) for w, b in zip(g.trainable_weights, before)))


@pytest.mark.parametrize("conditional", [False, True], ids=["dcgan", "cgan"])
def test_mixed_precision_step_moves_the_weights_as_far_as_float32(conditional):
    """Under mixed precision the optimizer divides the gradients by the loss scale (2**15 at the
    start), so the step must scale its losses by as much. Without that, Adam's epsilon swamped the
    tiny gradients and the generator moved 0.006x as far. float16 rounding changes the direction
    of an Adam step a little, its length hardly at all."""
    ratio = _generator_moves(conditional, "mixed_float16") / _generator_moves(conditional, "float32")
    assert 0.8 < ratio < 1.25, ratio


def test_bfloat16_step_moves_the_weights_as_far_as_float32():
    """bfloat16 has float32's exponent range, so small gradients do not underflow and no loss
    scaling is needed: the same steps move G about as far as in float32."""
    ratio = _generator_moves(False, "mixed_bfloat16") / _generator_moves(False, "float32")
    assert 0.8 < ratio < 1.25, ratio


def test_r1_penalty_adds_gamma_times_the_input_gradient_to_the_discriminators_step():
    """A linear D, logit = <w, x> + b, has the gradient w at every real image, so the R1 term
    gamma / 2 * |w|^2 adds gamma * w to D's gradient: plain SGD then moves w by lr * gamma * w more."""
    gamma, lr = 10.0, 1e-3
    kernels = []
    for r1_weight in (0.0, gamma):
        tf.keras.utils.set_random_seed(0)
        g = models.make_generator(16, (32, 16, 8))
        image = tf.keras.Input((28, 28, 1))
        d = tf.keras.Model(image, tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(image)))
        w0, b0 = (v.numpy().copy() for v in d.layers[-1].weights)
        d_opt = tf.keras.optimizers.SGD(lr)
        d_opt.build(d.trainable_variables)
        gan_train_step(g, d, make_optimizer(g, lr), d_opt, _batch(0), tf.random.Generator.from_seed(0),
                       r1_weight=r1_weight)
        kernels.append([v.numpy() for v in d.layers[-1].weights])
    np.testing.assert_allclose(kernels[0][0] - kernels[1][0], lr * gamma * w0, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(kernels[0][1], kernels[1][1], atol=1e-7)  # the bias has no say in the slope
    assert np.abs(kernels[0][0] - w0).max() > 1e-5  # D did move (the comparison above is not vacuous)


def test_spectral_norm_brings_every_layer_of_d_to_unit_gain():
    tf.keras.utils.set_random_seed(0)
    d = models.make_discriminator(widths=(8, 16), spectral_norm=True)
    wrapped = [layer for layer in d.layers if isinstance(layer, tf.keras.layers.SpectralNormalization)]

    def largest_singular_values():
        kernels = [w.layer.kernel.numpy() for w in wrapped]
        return [np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0] for k in kernels]

    assert len(wrapped) == 3 and max(abs(s - 1) for s in largest_singular_values()) > 0.2
    for _ in range(20):  # one power iteration per training call
        d(_batch(0), training=True)
    np.testing.assert_allclose(largest_singular_values(), 1.0, rtol=0.02)


def test_the_noise_code_is_uniform_and_read_off_the_first_entries():
    z = np.random.default_rng(0).standard_normal((20_000, 16)).astype(np.float32)
    one_hot = models.NoiseCode(10)(z).numpy()
    np.testing.assert_array_equal(one_hot.argmax(1), z[:, :10].argmax(1))
    assert one_hot.sum(1).tolist() == [1.0] * len(z)
    assert np.abs(one_hot.mean(0) - 0.1).max() < 0.01  # each value ~2,000 times (sd ~42)


def test_infogan_code_makes_the_generator_draw_its_code_visibly():
    """With a 4-valued code, D's code head and G learn together to make the code readable from
    the image: the code loss falls well below ln 4, the loss of a guess, within a few dozen steps."""
    tf.keras.utils.set_random_seed(0)
    g = models.make_generator(16, (32, 16, 8), categories=4)
    d = models.make_discriminator(widths=(8, 16), categories=4)
    assert len(d.outputs) == 2 and d.outputs[1].shape[-1] == 4
    g_opt, d_opt, rng = make_optimizer(g, 2e-3), make_optimizer(d, 2e-3), tf.random.Generator.from_seed(0)
    losses = [gan_train_step(g, d, g_opt, d_opt, _batch(s % 4), rng) for s in range(60)]
    assert set(losses[0]) == {"d_loss", "g_loss", "code_loss"}
    code = [float(loss["code_loss"]) for loss in losses]
    assert abs(code[0] - np.log(4)) < 0.3 and np.mean(code[-10:]) < 0.5 * np.log(4), code


def test_grid_latents_with_a_code_hold_each_code_in_its_own_row():
    from gan_tf.sampling import with_code

    z = np.random.default_rng(0).standard_normal((10, 20)).astype(np.float32)
    coded = with_code(z, 4)
    assert coded.shape == (40, 20)
    np.testing.assert_array_equal(models.code_of(coded, 4), np.repeat(np.arange(4), 10))
    for row, original in zip(coded.reshape(4, 10, 20).transpose(1, 0, 2), z):  # one noise vector, 4 codes
        for vector in row:
            np.testing.assert_array_equal(np.sort(vector), np.sort(original))  # a permutation of it
            np.testing.assert_array_equal(vector[4:], original[4:])
