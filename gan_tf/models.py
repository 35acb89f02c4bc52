"""Generator and discriminator builders for 28x28x1 images (taught in notebooks/02_dcgan_mnist.ipynb).

The default DCGAN follows the architecture of TensorFlow's classic DCGAN tutorial, with the
widths and the latent size as parameters:

generator      z (latent_dim) -> Dense 7*7*w0 -> 7x7x w0 -> 7x7x w1 -> 14x14x w2 -> 28x28x1 (tanh)
discriminator  28x28x1 -> 14x14x w0 -> 7x7x w1 -> one logit (no sigmoid; the losses take logits)
"""

import keras
from keras import layers

from .config import LATENT_DIM

IMAGE_SHAPE = (28, 28, 1)
GENERATOR_WIDTHS = (256, 128, 64)
DISCRIMINATOR_WIDTHS = (64, 128)
# The tutorial used Keras 2's LeakyReLU default (alpha=0.3); Keras 3 needs it spelled out.
NEGATIVE_SLOPE = 0.3


def make_generator(latent_dim=LATENT_DIM, widths=GENERATOR_WIDTHS, name="generator"):
    """Map a latent vector to a 28x28x1 image in [-1, 1]."""
    w0, w1, w2 = widths
    z = keras.Input(shape=(latent_dim,), name="z")
    # Biases are left out before BatchNorm: its beta does the same job.
    x = layers.Dense(7 * 7 * w0, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
    x = layers.Reshape((7, 7, w0))(x)
    # Stride 1 mixes features at 7x7; each stride-2 transposed convolution doubles the size.
    for width, stride in ((w1, 1), (w2, 2)):
        x = layers.Conv2DTranspose(width, 5, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
    # tanh matches the data's [-1, 1] range; float32 keeps it exact under mixed precision.
    image = layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False,
                                   activation="tanh", dtype="float32", name="image")(x)
    return keras.Model(z, image, name=name)


def make_discriminator(widths=DISCRIMINATOR_WIDTHS, dropout=0.3, name="discriminator"):
    """Map a 28x28x1 image to one real-vs-fake logit (or, as a WGAN critic, a score).

    No BatchNorm anywhere: WGAN-GP's penalty is per sample, which batch statistics would break.
    """
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = image
    for width in widths:
        x = layers.Conv2D(width, 5, strides=2, padding="same")(x)
        x = layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
        if dropout:  # a WGAN critic passes dropout=0: its score should be a fixed function
            x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(image, logit, name=name)


def latent_dim_of(generator):
    """The latent size a generator expects, read from its input layer."""
    return int(generator.input_shape[-1])
