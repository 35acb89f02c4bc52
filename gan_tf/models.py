"""Generator and discriminator builders (notebooks 02, 04 and 06; colour images: notebook 07).

The DCGAN follows the architecture of TensorFlow's classic DCGAN tutorial, with the widths and
the latent size as parameters (``tutorial_widths(w)``: w0, w1, w2 = 4w, 2w, w in G and w, 2w in D;
the tutorial's w is 64):

generator      z (latent_dim) -> Dense 7*7*w0 -> 7x7x w0 -> 7x7x w1 -> 14x14x w2 -> 28x28x1 (tanh)
discriminator  28x28x1 -> 14x14x w0 -> 7x7x w1 -> one logit (no sigmoid; the losses take logits)

Colour images of your own (an image folder, 32x32 or 64x64 RGB) get the DCGAN paper's
architecture (Radford et al. 2016), sized by a base width w:

generator      z -> Dense 4*4*8w -> 4x4x 8w -> 8x8x 4w -> 16x16x 2w -> 32x32x w -> 64x64x3 (tanh)
discriminator  64x64x3 -> 32x32x w -> 16x16x 2w -> 8x8x 4w -> 4x4x 8w -> one logit

(a 32x32 image drops the widest stage of each): BatchNorm and ReLU in G, LeakyReLU(0.2) in D,
weights drawn from N(0, 0.02), as in the paper. D halves the size with stride-2 4x4 convolutions;
G doubles it by repeating pixels and a 3x3 convolution instead of the paper's transposed
convolutions (see ``_colour_generator``).

With ``categories`` = k > 0 (InfoGAN, Chen et al. 2016) the generator reads a k-way code off its
noise, the index of the largest of z's first k entries, and D gains a second head that guesses
that code from the image: an unconditional GAN that may draw k kinds of image apart.

With ``num_classes`` > 0 both become conditional (Mirza & Osindero, 2014) and take a second
input, an integer class label: the generator appends a learned label embedding to z, the
discriminator sees a learned 28x28 label map as a second image channel.

CycleGAN (Zhu et al. 2017, notebook 06) translates images instead of drawing them from noise:
its generator is a small ResNet (downsample, residual blocks, upsample) and its discriminator a
PatchGAN that scores overlapping patches, both with instance normalisation.
"""

import keras
from keras import layers

from .config import COLOUR_WIDTH, LATENT_DIM, TUTORIAL_WIDTH, UPSAMPLINGS

IMAGE_SHAPE = (28, 28, 1)


def tutorial_widths(width=TUTORIAL_WIDTH):
    """The 28x28 networks' widths at base width w: G's (4w, 2w, w) and D's (w, 2w)."""
    return (4 * width, 2 * width, width), (width, 2 * width)


GENERATOR_WIDTHS, DISCRIMINATOR_WIDTHS = tutorial_widths()  # (256, 128, 64) and (64, 128)
# The tutorial used Keras 2's LeakyReLU default (alpha=0.3); Keras 3 needs it spelled out.
NEGATIVE_SLOPE = 0.3
LABEL_EMBEDDING = 50  # length of the generator's label vector


@keras.saving.register_keras_serializable(package="gan_tf")
class NoiseCode(layers.Layer):
    """z -> one_hot(argmax(z[:, :k])): a categorical code hidden in Gaussian noise. Each of the k
    entries is the largest equally often, so the code is uniform and G's input stays plain
    N(0, I) noise that every sampler can draw; but G may now change its image abruptly where the
    code changes, which a smooth function of z alone cannot (InfoGAN's code, read off the noise)."""

    def __init__(self, categories, **kwargs):
        super().__init__(**kwargs)
        self.categories = categories

    def call(self, z):
        return keras.ops.one_hot(code_of(z, self.categories), self.categories, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "categories": self.categories}


def code_of(z, categories):
    """The categorical code NoiseCode reads off a batch of noise vectors: an int per row."""
    return keras.ops.argmax(z[:, :categories], axis=-1)


def _label_input():
    return keras.Input(shape=(), dtype="int32", name="label")


def _colour_stages(image_shape, width):
    """The widths of the colour networks' 4x4 ... image_size/2 stages, widest first."""
    size = image_shape[0]
    if image_shape[0] != image_shape[1] or size not in (32, 64) or image_shape[2] not in (1, 3):
        raise ValueError(f"image_shape must be (28, 28, 1), or (32 or 64, same, 1 or 3); got {image_shape}")
    return [width * 2 ** i for i in range(size.bit_length() - 4, -1, -1)]  # 64: 8w 4w 2w w, 32: 4w 2w w


def make_generator(latent_dim=LATENT_DIM, widths=GENERATOR_WIDTHS, num_classes=0, name="generator",
                   image_shape=IMAGE_SHAPE, width=COLOUR_WIDTH, synchronized=False, categories=0,
                   upsampling="resize"):
    """Map a latent vector (and, if conditional, a class label) to an image in [-1, 1]:
    28x28x1 with the tutorial's ``widths``, else ``image_shape`` (32 or 64 square, colour) with
    the DCGAN paper's networks of base ``width``.

    ``upsampling`` (colour only): "resize" repeats pixels and convolves; "transposed" is the DCGAN
    paper's stride-2 transposed convolution, which can stamp a checkerboard (notebook 05).
    ``categories`` > 0: the one-hot code NoiseCode reads off z is appended to z.
    ``synchronized``: BatchNorm takes its statistics over the global batch of all replicas when
    trained under a tf.distribute strategy (gan_tf.distribute), not each replica's share alone.
    """
    norm = lambda: layers.BatchNormalization(synchronized=synchronized)  # noqa: E731
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, x = [z], z
    if num_classes:  # the label becomes a learned vector beside the noise
        label = _label_input()
        inputs.append(label)
        x = layers.Concatenate()([z, layers.Embedding(num_classes, LABEL_EMBEDDING,
                                                      name="label_embedding")(label)])
    if categories:
        x = layers.Concatenate()([x, NoiseCode(categories, name="code")(z)])
    if tuple(image_shape) != IMAGE_SHAPE:
        image = _colour_generator(x, image_shape, width, norm, upsampling)
        return keras.Model(inputs if num_classes else z, image, name=name)
    w0, w1, w2 = widths
    # Biases are left out before BatchNorm: its beta does the same job.
    x = layers.Dense(7 * 7 * w0, use_bias=False)(x)
    x = norm()(x)
    x = layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
    x = layers.Reshape((7, 7, w0))(x)
    # Stride 1 mixes features at 7x7; each stride-2 transposed convolution doubles the size.
    for width, stride in ((w1, 1), (w2, 2)):
        x = layers.Conv2DTranspose(width, 5, strides=stride, padding="same", use_bias=False)(x)
        x = norm()(x)
        x = layers.LeakyReLU(negative_slope=NEGATIVE_SLOPE)(x)
    # tanh matches the data's [-1, 1] range; float32 keeps it exact under mixed precision.
    image = layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False,
                                   activation="tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs if num_classes else z, image, name=name)


def _paper_init():
    # The DCGAN paper draws every weight from N(0, 0.02). With Keras' default (Glorot) the
    # 64x64 generator drew one image for every z for its first few hundred steps on the emoji.
    return keras.initializers.RandomNormal(stddev=0.02)


def _colour_generator(x, image_shape, width, norm=layers.BatchNormalization, upsampling="resize"):
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, got {upsampling!r}")
    stages = _colour_stages(image_shape, width)
    x = layers.Dense(4 * 4 * stages[0], use_bias=False, kernel_initializer=_paper_init())(x)
    x = layers.Reshape((4, 4, stages[0]))(layers.ReLU()(norm()(x)))

    # Each stage doubles the size by repeating pixels, then convolves (Odena et al. 2016), where the
    # paper uses stride-2 transposed convolutions: those stamped a grid of repeated blobs over every
    # emoji (benchmarks/colour_generator.py: 500 emoji at 32x32, 1,400 steps, KID 2.69 against 0.12).
    # A stride-2 transposed convolution computes even and odd output pixels with different quarters
    # of its 4x4 kernel; unless those learn to agree, the output repeats a pattern every 2 pixels.
    def double(x, channels, **kwargs):
        if upsampling == "transposed":
            return layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                          kernel_initializer=_paper_init(), **kwargs)(x)
        return layers.Conv2D(channels, 3, padding="same", kernel_initializer=_paper_init(), **kwargs)(
            layers.UpSampling2D()(x))

    for stage in stages[1:]:
        x = layers.ReLU()(norm()(double(x, stage, use_bias=False)))
    return double(x, image_shape[2], activation="tanh", dtype="float32", name="image")


def make_discriminator(widths=DISCRIMINATOR_WIDTHS, dropout=0.3, num_classes=0, label_channel=True,
                       name="discriminator", image_shape=IMAGE_SHAPE, width=COLOUR_WIDTH,
                       spectral_norm=False, categories=0):
    """Map an image (and, if conditional, a class label) to one real-vs-fake logit (or, as a
    WGAN critic, a score): 28x28x1 with the tutorial's ``widths``, else ``image_shape`` with the
    DCGAN paper's strided convolutions of base ``width``. ``label_channel``: a conditional D also
    sees the label as a learned image channel; without it the label enters only through the
    projection. ``spectral_norm``: every convolution and the output layer are divided by their
    largest singular value (Miyato et al. 2018), which bounds how steeply D's logit can change
    with its input. ``categories`` > 0: a second output, k logits guessing the generator's
    code (InfoGAN's Q head, on D's features).

    No BatchNorm anywhere (the paper has it in D): WGAN-GP's penalty is per sample, which batch
    statistics would break, and one D for every loss keeps the comparison fair.
    """
    image_shape = tuple(image_shape)
    image = keras.Input(shape=image_shape, name="image")
    inputs, x = [image], image
    if num_classes:
        label = _label_input()
        inputs.append(label)
    if num_classes and label_channel:  # the label becomes a learned picture stacked on the image
        pixels = image_shape[0] * image_shape[1]
        label_map = layers.Embedding(num_classes, pixels, name="label_embedding")(label)
        x = layers.Concatenate()([image, layers.Reshape((*image_shape[:2], 1))(label_map)])
    if image_shape == IMAGE_SHAPE:
        convolutions = [(w, 5, NEGATIVE_SLOPE, "glorot_uniform") for w in widths]
    else:
        convolutions = [(w, 4, 0.2, _paper_init()) for w in reversed(_colour_stages(image_shape, width))]

    def normalised(layer):  # Keras' wrapper re-scales the kernel in place on every training call
        if not spectral_norm:
            return layer
        return layers.SpectralNormalization(layer, dtype=layer.dtype_policy, name=f"{layer.name}_sn")

    for filters, kernel, slope, init in convolutions:
        x = normalised(layers.Conv2D(filters, kernel, strides=2, padding="same", kernel_initializer=init))(x)
        x = layers.LeakyReLU(negative_slope=slope)(x)
        if dropout:  # a WGAN critic passes dropout=0: its score should be a fixed function
            x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    logit = normalised(layers.Dense(1, dtype="float32", name="logit"))(x)
    if num_classes:  # projection (Miyato & Koyama, 2018): + <features, class vector>
        class_vector = layers.Embedding(num_classes, x.shape[-1], name="label_projection")(label)
        logit = layers.Add(dtype="float32")([logit, layers.Dot(axes=1)([x, class_vector])])
    outputs = [logit, layers.Dense(categories, dtype="float32", name="code")(x)] if categories else logit
    return keras.Model(inputs if num_classes else image, outputs, name=name)


def latent_dim_of(generator):
    """The latent size a generator expects, read from its first input."""
    return int(generator.inputs[0].shape[-1])


def num_classes_of(model):
    """How many classes a conditional network knows; 0 for an unconditional one."""
    names = [layer.name for layer in model.layers]
    for name in ("label_embedding", "label_projection"):  # D may see the label by projection only
        if name in names:
            return model.get_layer(name).input_dim
    return 0


def generator_with_embedding_input(generator):
    """A conditional generator's layers taking the label *embedding* (a vector) instead of the
    label: the same weights, so two classes' embeddings can be blended (notebook 04)."""
    concat = next(layer for layer in generator.layers if isinstance(layer, layers.Concatenate))
    z, embedding = concat.input
    return keras.Model([z, embedding], generator.output, name=generator.name + "_from_embedding")


def _instance_norm():
    # One group per channel: each image's each channel is normalised on its own, so the
    # statistics never mix images of a batch (the CycleGAN paper's choice).
    return layers.GroupNormalization(groups=-1, epsilon=1e-5)


def make_translator(widths=(32, 32), residual_blocks=4, name="generator_ab"):
    """Map a 28x28x1 image in [-1, 1] to another (CycleGAN's ResNet generator, scaled down).

    28x28 w0 -> 14x14 w1 -> residual blocks at 14x14 -> 28x28 w0 -> 28x28x1 (tanh). The
    residual blocks make "change a little" the easy thing to learn: each adds a correction
    to its input instead of redrawing it.
    """
    w0, w1 = widths
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(w0, 7, padding="same")(image)
    x = layers.ReLU()(_instance_norm()(x))
    x = layers.Conv2D(w1, 3, strides=2, padding="same")(x)
    x = layers.ReLU()(_instance_norm()(x))
    for _ in range(residual_blocks):
        y = layers.Conv2D(w1, 3, padding="same")(x)
        y = layers.ReLU()(_instance_norm()(y))
        y = _instance_norm()(layers.Conv2D(w1, 3, padding="same")(y))
        x = layers.Add()([x, y])
    x = layers.Conv2DTranspose(w0, 3, strides=2, padding="same")(x)
    x = layers.ReLU()(_instance_norm()(x))
    out = layers.Conv2D(1, 7, padding="same", activation="tanh", dtype="float32", name="translated")(x)
    return keras.Model(image, out, name=name)


def make_patch_discriminator(widths=(64, 128), name="discriminator_b"):
    """Map a 28x28x1 image to a 7x7 grid of real-vs-fake scores, one per overlapping patch of
    about 22x22 pixels (the PatchGAN of Isola et al. 2017, scaled to 28x28). Scores, not
    logits: CycleGAN trains them with the least-squares loss."""
    w0, w1 = widths
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.LeakyReLU(negative_slope=0.2)(layers.Conv2D(w0, 4, strides=2, padding="same")(image))
    x = layers.Conv2D(w1, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(negative_slope=0.2)(_instance_norm()(x))
    scores = layers.Conv2D(1, 4, padding="same", dtype="float32", name="patch_scores")(x)
    return keras.Model(image, scores, name=name)
