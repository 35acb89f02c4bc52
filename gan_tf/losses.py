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


GENERATOR_LOSSES = {
    "non_saturating": generator_loss_non_saturating,
    "saturating": generator_loss_saturating,
}
