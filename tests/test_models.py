import numpy as np
import pytest

from gan_tf import models


def test_generator_shape_range_and_parameter_count():
    generator = models.make_generator()
    images = generator(np.random.default_rng(0).normal(size=(5, 100)).astype("float32"))
    assert images.shape == (5, 28, 28, 1)
    assert np.abs(images.numpy()).max() <= 1.0  # tanh output
    # The classic tutorial's generator: 2,330,944 parameters, of which 25,856 BatchNorm statistics.
    assert generator.count_params() == 2_330_944
    assert sum(int(np.prod(w.shape)) for w in generator.trainable_weights) == 2_305_472
    assert models.latent_dim_of(generator) == 100


def test_discriminator_shape_and_parameter_count():
    discriminator = models.make_discriminator()
    logits = discriminator(np.zeros((3, 28, 28, 1), "float32"))
    assert logits.shape == (3, 1)
    assert discriminator.count_params() == 212_865


@pytest.mark.parametrize("latent_dim, widths", [(16, (32, 16, 8)), (64, (128, 64, 32))])
def test_generator_widths_and_latent_size_are_parameters(latent_dim, widths):
    generator = models.make_generator(latent_dim, widths)
    assert generator(np.zeros((2, latent_dim), "float32")).shape == (2, 28, 28, 1)
    w0, w1, w2 = widths
    dense = latent_dim * 49 * w0
    convs = 25 * (w0 * w1 + w1 * w2 + w2)
    batchnorm = 4 * (49 * w0 + w1 + w2)
    assert generator.count_params() == dense + convs + batchnorm


def test_discriminator_widths_are_parameters():
    discriminator = models.make_discriminator(widths=(8, 16))
    assert discriminator(np.zeros((2, 28, 28, 1), "float32")).shape == (2, 1)
    assert discriminator.count_params() == (25 * 8 + 8) + (25 * 8 * 16 + 16) + (7 * 7 * 16 + 1)


def test_conditional_networks_take_a_label_and_count_its_embeddings():
    generator = models.make_generator(num_classes=10)
    z = np.zeros((4, 100), "float32")
    labels = np.array([0, 3, 7, 9], "int32")
    assert generator([z, labels]).shape == (4, 28, 28, 1)
    # Over the unconditional generator: the label table and the Dense weights of its 50 entries.
    extra = 10 * models.LABEL_EMBEDDING + models.LABEL_EMBEDDING * 7 * 7 * 256
    assert generator.count_params() == 2_330_944 + extra
    discriminator = models.make_discriminator(num_classes=10)
    assert discriminator([np.zeros((4, 28, 28, 1), "float32"), labels]).shape == (4, 1)
    # The label map is a second input channel (a 28x28 table per class, 25*64 more first-layer
    # weights), and the projection adds one 7*7*128 class vector per class.
    assert discriminator.count_params() == 212_865 + 10 * 784 + 25 * 64 + 10 * 7 * 7 * 128
    assert models.num_classes_of(generator) == 10 and models.num_classes_of(discriminator) == 10
    assert models.num_classes_of(models.make_generator()) == 0
    # Without the label channel the label reaches D through the projection alone.
    projection_only = models.make_discriminator(num_classes=10, label_channel=False)
    assert projection_only.count_params() == 212_865 + 10 * 7 * 7 * 128
    assert models.num_classes_of(projection_only) == 10
    assert models.latent_dim_of(generator) == 100


def test_the_label_changes_the_image():
    generator = models.make_generator(num_classes=10)
    z = np.random.default_rng(0).normal(size=(1, 100)).astype("float32")
    first = generator([z, np.array([1], "int32")]).numpy()
    other = generator([z, np.array([2], "int32")]).numpy()
    assert not np.allclose(first, other)


def test_generator_with_embedding_input_matches_the_label_path():
    generator = models.make_generator(num_classes=10)
    table = generator.get_layer("label_embedding").embeddings.numpy()
    z = np.random.default_rng(1).normal(size=(3, 100)).astype("float32")
    labels = np.array([2, 5, 9], "int32")
    via_labels = generator([z, labels], training=False).numpy()
    via_vectors = models.generator_with_embedding_input(generator)([z, table[labels]], training=False)
    np.testing.assert_allclose(via_labels, via_vectors.numpy(), atol=1e-6)
