"""GAN losses as small pure functions of the discriminator's logits (notebooks/01_minimax_objective.ipynb).

With D(x) = sigmoid(logit), the value function of the game is
    V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))].
The discriminator maximises V; every function here returns a quantity to *minimise*.
They are written with softplus, log(1 + e^t), because log(sigmoid(t)) = -softplus(-t) and
log(1 - sigmoid(t)) = -softplus(t) stay finite for any logit, where log(sigmoid) would not.
"""

import tensorflow as tf


def discriminator_loss(real_logits, fake_logits):
    """-V for the discriminator: binary cross-entropy, real labelled 1 and fake labelled 0."""
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))


def generator_loss_saturating(fake_logits):
    """The minimax generator loss E[log(1 - D(G(z)))]; its gradient vanishes when D wins."""
    return -tf.reduce_mean(tf.nn.softplus(fake_logits))


def generator_loss_non_saturating(fake_logits):
    """The heuristic E[-log D(G(z))]: same fixed point, strong gradients when D wins."""
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def mode_seeking_loss(images_a, images_b, z_a, z_b, epsilon=1e-5):
    """The mode-seeking term of MSGAN (Mao et al. 2019), added to the generator's loss.

    Row i of ``images_a`` and of ``images_b`` are drawn for the same class from the noise
    vectors z_a[i] and z_b[i]. A generator that ignores its noise makes them equal, the ratio
    mean|image gap| / mean|noise gap| falls to 0 and this loss, its inverse, grows without bound.
    """
    image_gap = tf.reduce_mean(tf.abs(tf.cast(images_a, tf.float32) - tf.cast(images_b, tf.float32)))
    noise_gap = tf.reduce_mean(tf.abs(z_a - z_b))
    return 1.0 / (image_gap / noise_gap + epsilon)


GENERATOR_LOSSES = {
    "non_saturating": generator_loss_non_saturating,
    "saturating": generator_loss_saturating,
}


# Wasserstein GAN (notebooks/03_wgan_gp.ipynb). The critic outputs an unbounded score f(x), not a
# probability; E[f(real)] - E[f(fake)] estimates the Wasserstein-1 distance when f is 1-Lipschitz.

def code_loss(codes, code_logits):
    """InfoGAN's term for a categorical code: the cross-entropy of D's guess of the code that
    drew each fake. Minimised by G and D together, it makes the code visible in the image."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(codes, code_logits))


def critic_loss(real_scores, fake_scores):
    """The critic minimises E[f(fake)] - E[f(real)], i.e. maximises the Wasserstein estimate."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_loss_wasserstein(fake_scores):
    """The generator raises the critic's score of its samples."""
    return -tf.reduce_mean(fake_scores)


def gradient_penalty(critic, real, fake, alpha, epsilon=1e-12):
    """WGAN-GP's E[(||grad f(x_hat)|| - 1)^2] at x_hat = alpha * real + (1 - alpha) * fake.

    ``alpha`` ~ Uniform[0, 1], one per sample, shaped to broadcast: (B, 1, 1, 1) for images,
    (B, 1) for 2-D points (Gulrajani et al., 2017, Algorithm 1). ``epsilon`` sits inside the
    square root so the norm stays differentiable where the gradient is exactly zero.
    """
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        # Samples do not interact in the critic, so the gradient of the sum is per sample.
        summed = tf.reduce_sum(critic(x_hat, training=True))
    grads = tape.gradient(summed, x_hat)
    squared = tf.reduce_sum(tf.reshape(grads, [tf.shape(grads)[0], -1]) ** 2, axis=1)
    return tf.reduce_mean((tf.sqrt(squared + epsilon) - 1.0) ** 2)


# CycleGAN (notebooks/06_cyclegan.ipynb): least-squares adversarial losses (Mao et al. 2017), which
# the CycleGAN paper found steadier than cross-entropy, and L1 distances that tie the two
# generators together.

def least_squares_discriminator_loss(real_scores, fake_scores):
    """D pushes real scores to 1 and fake ones to 0; halved, as in the paper, to slow D down."""
    real_scores, fake_scores = tf.cast(real_scores, tf.float32), tf.cast(fake_scores, tf.float32)
    return 0.5 * (tf.reduce_mean((real_scores - 1.0) ** 2) + tf.reduce_mean(fake_scores ** 2))


def least_squares_generator_loss(fake_scores):
    """G pushes the scores of its images to 1, the score of a real image."""
    return tf.reduce_mean((tf.cast(fake_scores, tf.float32) - 1.0) ** 2)


def l1_distance(images, targets):
    """Mean absolute pixel difference: the cycle-consistency and identity losses."""
    return tf.reduce_mean(tf.abs(tf.cast(images, tf.float32) - tf.cast(targets, tf.float32)))
