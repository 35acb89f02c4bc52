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
                   generator_loss="non_saturating"):
    """Update both networks once from the same fakes; return {'d_loss', 'g_loss'}.

    ``rng`` is a ``tf.random.Generator``: checkpointing it makes a resumed run draw the
    same noise an uninterrupted one would. ``generator_loss`` names an entry of
    ``losses.GENERATOR_LOSSES``.
    """
    batch_size = tf.shape(real_images)[0]
    z = rng.normal([batch_size, latent_dim_of(generator)])
    # Two tapes over one forward pass: the fakes feed both losses, as in the classic recipe.
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        fake_images = generator(z, training=True)
        real_logits = discriminator(real_images, training=True)
        fake_logits = discriminator(fake_images, training=True)
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = GENERATOR_LOSSES[generator_loss](fake_logits)
    g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
    d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
    g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
    d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
    return {"d_loss": d_loss, "g_loss": g_loss}
