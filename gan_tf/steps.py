"""One training step of a GAN, compiled with tf.function (notebooks/02_dcgan_mnist.ipynb).

The step reads no globals: it is handed the two networks, their optimizers, a batch of real
images and the random generator it draws noise from, and returns its losses. The batch size
comes from the batch itself, and the pipeline's batches all have one shape, so the function
is traced once and then runs as a graph.
"""

import tensorflow as tf

from .losses import GENERATOR_LOSSES, discriminator_loss
from .models import latent_dim_of


def make_optimizer(model, learning_rate=1e-4, beta_1=0.9):
    """Adam for one network, built now so its slots exist before tracing or restoring."""
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
    optimizer.build(model.trainable_variables)
    return optimizer


@tf.function
def gan_train_step(generator, discriminator, g_optimizer, d_optimizer, real_images, rng,
                   generator_loss="non_saturating", r1_weight=0.0):
    """Update both networks once from the same fakes; return {'d_loss', 'g_loss'}.

    ``rng`` is a ``tf.random.Generator``: checkpointing it makes a resumed run draw the
    same noise an uninterrupted one would. ``generator_loss`` names an entry of
    ``losses.GENERATOR_LOSSES``. ``r1_weight`` > 0 adds the R1 penalty
    (r1_weight / 2) * E||grad D(x_real)||^2 (Mescheder et al., 2018) to the discriminator's loss.
    """
    batch_size = tf.shape(real_images)[0]
    z = rng.normal([batch_size, latent_dim_of(generator)])
    # Two tapes over one forward pass: the fakes feed both losses, as in the classic recipe.
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        fake_images = generator(z, training=True)
        if r1_weight:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(real_images)
                real_logits = discriminator(real_images, training=True)
                # Samples do not interact, so the gradient of the sum is per sample.
                summed = tf.reduce_sum(real_logits)
            slopes = r1_tape.gradient(summed, real_images)
            r1 = tf.reduce_mean(tf.reduce_sum(tf.reshape(slopes, [batch_size, -1]) ** 2, axis=1))
        else:
            real_logits = discriminator(real_images, training=True)
            r1 = 0.0
        fake_logits = discriminator(fake_images, training=True)
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = GENERATOR_LOSSES[generator_loss](fake_logits)
        d_objective = d_loss + 0.5 * r1_weight * r1
    g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
    d_grads = d_tape.gradient(d_objective, discriminator.trainable_variables)
    g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
    d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
    return {"d_loss": d_loss, "g_loss": g_loss}
