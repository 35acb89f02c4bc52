import math

import numpy as np
import tensorflow as tf

from gan_tf import config, losses


def test_values_at_an_undecided_discriminator():
    """D(x) = sigmoid(0) = 1/2 everywhere: the game's value is -log 4."""
    zeros = tf.zeros(8)
    assert math.isclose(float(losses.discriminator_loss(zeros, zeros)), math.log(4), rel_tol=1e-6)
    assert math.isclose(float(losses.generator_loss_saturating(zeros)), -math.log(2), rel_tol=1e-6)
    assert math.isclose(float(losses.generator_loss_non_saturating(zeros)), math.log(2), rel_tol=1e-6)


def test_values_on_known_probabilities():
    d_real, d_fake = np.array([0.9, 0.8]), np.array([0.1, 0.3])
    logit = lambda p: tf.constant(np.log(p / (1 - p)), tf.float32)  # noqa: E731
    expected_d = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
    np.testing.assert_allclose(losses.discriminator_loss(logit(d_real), logit(d_fake)), expected_d,
                               rtol=1e-5)
    np.testing.assert_allclose(losses.generator_loss_saturating(logit(d_fake)),
                               np.mean(np.log(1 - d_fake)), rtol=1e-5)
    np.testing.assert_allclose(losses.generator_loss_non_saturating(logit(d_fake)),
                               -np.mean(np.log(d_fake)), rtol=1e-5)


def test_finite_for_extreme_logits():
    extreme = tf.constant([-200.0, 200.0])
    for value in (losses.discriminator_loss(extreme, extreme),
                  losses.generator_loss_saturating(extreme),
                  losses.generator_loss_non_saturating(extreme)):
        assert np.isfinite(value.numpy())


def test_saturating_gradient_vanishes_when_discriminator_wins():
    """At D(G(z)) ~ 0.0067 the minimax loss barely moves the generator; -log D does."""
    logit = tf.Variable([-5.0])
    grads = {}
    for name, fn in losses.GENERATOR_LOSSES.items():
        with tf.GradientTape() as tape:
            value = fn(logit)
        grads[name] = abs(float(tape.gradient(value, logit)[0]))
    np.testing.assert_allclose(grads["saturating"], 1 / (1 + math.exp(5)), rtol=1e-5)
    np.testing.assert_allclose(grads["non_saturating"], 1 - 1 / (1 + math.exp(5)), rtol=1e-5)


def test_config_lists_the_same_losses():
    assert tuple(losses.GENERATOR_LOSSES) == config.GENERATOR_LOSS_NAMES


def test_mode_seeking_loss_is_the_inverse_of_image_gap_over_noise_gap():
    a = tf.zeros((4, 28, 28, 1))
    z_a, z_b = tf.zeros((4, 8)), tf.fill((4, 8), 2.0)  # noise gap 2
    np.testing.assert_allclose(losses.mode_seeking_loss(a, a + 0.5, z_a, z_b), 1 / (0.25 + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(losses.mode_seeking_loss(a, a - 1.0, z_a, z_b), 1 / (0.5 + 1e-5), rtol=1e-6)
    # Identical images (noise ignored): the largest value, finite thanks to epsilon.
    np.testing.assert_allclose(losses.mode_seeking_loss(a, a, z_a, z_b), 1e5, rtol=1e-5)
