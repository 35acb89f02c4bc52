import io

import keras
import matplotlib
import numpy as np
from PIL import Image

from gan_tf import plots

matplotlib.use("Agg")


def tiny_generator(conditional=False, latent=8):
    """A generator of 4x4 grey images whose pixels follow the noise (and the label) linearly."""
    z = keras.Input((latent,))
    inputs, x = [z], z
    if conditional:
        label = keras.Input((), dtype="int32")
        inputs.append(label)
        x = keras.layers.Concatenate()([z, keras.layers.Embedding(10, 2)(label)])
    image = keras.layers.Reshape((4, 4, 1))(keras.layers.Dense(16, activation="tanh")(x))
    return keras.Model(inputs if conditional else z, image)


def test_a_latent_walk_starts_at_its_vector_and_moves_along_the_direction():
    generator = tiny_generator()
    start, direction = np.zeros(8), np.eye(8)[2]
    walk = plots.latent_walk(generator, [0.0, 1.0], direction, start)
    np.testing.assert_allclose(walk[0], generator(start[None].astype("float32")).numpy()[0], atol=1e-6)
    np.testing.assert_allclose(walk[1], generator(direction[None].astype("float32")).numpy()[0], atol=1e-6)


def test_the_explorer_draws_a_static_grid_and_a_widget_that_redraws():
    import matplotlib.pyplot as plt

    for conditional, rows in ((False, 3), (True, 10)):
        plt.close("all")
        explorer = plots.latent_explorer(tiny_generator(conditional), directions=3, columns=5)
        image = plt.gca().images[0].get_array()
        assert image.shape[0] == rows * (4 + 2) + 2 and image.shape[1] == 5 * (4 + 2) + 2
        controls, picture = explorer.children
        assert len(controls.children) == (3 if conditional else 2)
        before = picture.value
        assert Image.open(io.BytesIO(before)).size == (24, 24)  # one 4x4 image, enlarged 6 times
        controls.children[1].value = 3.0  # the distance slider
        assert picture.value != before
