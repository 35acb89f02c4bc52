"""REFERENCE, not gan_tf: our re-implementation of the recipe published in TensorFlow's classic
DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan), used only as the yardstick of the
benchmarks in this folder.

The published recipe, as we reproduce it:
- data: MNIST train split scaled to [-1, 1], shuffled over all 60,000 images, batches of 256
  (the last, partial batch of 96 is kept);
- generator: Dense 7*7*256 (no bias), BN, LeakyReLU -> reshape -> ConvT 128 5x5 s1, BN, LeakyReLU
  -> ConvT 64 5x5 s2, BN, LeakyReLU -> ConvT 1 5x5 s2 tanh (no biases);
- discriminator: Conv 64 5x5 s2, LeakyReLU, Dropout 0.3 -> Conv 128 5x5 s2, LeakyReLU,
  Dropout 0.3 -> Flatten -> Dense 1 (a logit);
- LeakyReLU slope 0.3 (Keras' default), Keras' default initialisers;
- losses: binary cross-entropy on logits; the generator's is the non-saturating -log D(G(z));
- optimizers: Adam(1e-4) for each network, Keras' defaults otherwise (beta_1 0.9);
- the noise batch always has 256 rows, also against the last, partial real batch;
- 50 epochs (the benchmarks stop at 30).

Written from that description on purpose without importing gan_tf, so that a change to gan_tf
can never change the yardstick.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

BATCH_SIZE = 256
NOISE_DIM = 100
LEARNING_RATE = 1e-4


def generator_model():
    return keras.Sequential([
        keras.Input(shape=(NOISE_DIM,)),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
    ], name="reference_generator")


def discriminator_model():
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, 5, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Dropout(0.3),
        layers.Conv2D(128, 5, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1),
    ], name="reference_discriminator")


def dataset(images_uint8, seed=0):
    """The tutorial's pipeline: scale, shuffle the whole split, batch (partial batch kept)."""
    x = (images_uint8.astype(np.float32) - 127.5) / 127.5
    ds = tf.data.Dataset.from_tensor_slices(x)
    return ds.shuffle(len(x), seed=seed).batch(BATCH_SIZE)


class Reference:
    """The two networks, their optimizers and the tutorial's train step."""

    def __init__(self):
        self.generator = generator_model()
        self.discriminator = discriminator_model()
        self.g_optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.d_optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.step = tf.function(self._step)

    def _step(self, real_images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator(noise, training=True)
            real_out = self.discriminator(real_images, training=True)
            fake_out = self.discriminator(fake_images, training=True)
            g_loss = self.bce(tf.ones_like(fake_out), fake_out)
            d_loss = (self.bce(tf.ones_like(real_out), real_out)
                      + self.bce(tf.zeros_like(fake_out), fake_out))
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}
