"""A GAN you can watch: 2-D points on a ring of Gaussians (notebooks/01_minimax_objective.ipynb).

The ring is the standard test of mode collapse (VEEGAN, Srivastava et al. 2017; PacGAN,
Lin et al. 2018): 8 Gaussians of standard deviation 0.01 spaced evenly on a circle of radius 1.
A generated point is *high quality* when it lies within 3 standard deviations of its nearest
centre, and a mode is *covered* when at least one high-quality point falls in it.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from .losses import discriminator_loss
from .steps import gan_train_step, make_optimizer, wgan_train_step

MODES, RADIUS, STD = 8, 1.0, 0.01


def ring_centres(modes=MODES, radius=RADIUS):
    """(modes, 2) centres evenly spaced on a circle."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def sample_ring(n, rng, modes=MODES, radius=RADIUS, std=STD):
    """n points from the mixture, each mode equally likely. ``rng``: a numpy Generator."""
    centres = ring_centres(modes, radius)
    which = rng.integers(0, modes, size=n)
    return (centres[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


def mode_coverage(points, modes=MODES, radius=RADIUS, std=STD, within=3.0):
    """The VEEGAN / PacGAN measure: modes covered and the share of high-quality points."""
    centres = ring_centres(modes, radius)
    distance = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)  # (N, modes)
    nearest, good = distance.argmin(axis=1), distance.min(axis=1) <= within * std
    counts = np.bincount(nearest[good], minlength=modes)
    return {"modes": int((counts > 0).sum()), "high_quality": float(good.mean()),
            "counts": counts.tolist()}


def draw_points(ax, points, title=None, limit=1.6):
    """Points over the ring's centres (red crosses) on a matplotlib axis; with a ``title``, the
    title gains the points' mode coverage and share of high-quality points."""
    ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4)
    ax.scatter(*ring_centres().T, marker="x", color="red", s=20)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    if title is not None:
        cov = mode_coverage(points)
        ax.set_title(f"{title}\n{cov['modes']}/8 modes, {100 * cov['high_quality']:.1f} % high quality",
                     fontsize=9)


class Pack(layers.Layer):
    """PacGAN's packing: m samples become one input, so D judges them jointly.

    A generator that collapses yields packs of near-identical points, which real packs
    almost never are; that makes collapse visible to the discriminator.
    """

    def __init__(self, m, **kwargs):
        super().__init__(**kwargs)
        self.m = m

    def call(self, x):
        return ops.reshape(x, (-1, self.m * x.shape[-1]))  # (B, d) -> (B / m, m * d)

    def compute_output_shape(self, input_shape):
        return (None, self.m * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "m": self.m}


class Maxout(layers.Layer):
    """The largest of ``pieces`` linear units, ``units`` times: the activation of the papers'
    discriminator (Goodfellow et al. 2013), which VEEGAN and PacGAN kept from ALI's code."""

    def __init__(self, units, pieces, **kwargs):
        super().__init__(**kwargs)
        self.units, self.pieces = units, pieces
        self.linear = layers.Dense(units * pieces)

    def build(self, input_shape):
        self.linear.build(input_shape)

    def call(self, x):
        return ops.max(ops.reshape(self.linear(x), (-1, self.units, self.pieces)), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces}


def make_mlp_generator(latent_dim=2, hidden=(128, 128, 128), batch_norm=False, name="toy_generator"):
    """Noise -> a 2-D point. A linear output: the ring is not bounded like pixels are.

    ``batch_norm``: BatchNorm before each ReLU, as in the papers' generator (PAPERS_SETTING).
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    x = z
    for width in hidden:
        if batch_norm:
            x = layers.Activation("relu")(layers.BatchNormalization()(layers.Dense(width, use_bias=False)(x)))
        else:
            x = layers.Dense(width, activation="relu")(x)
    return keras.Model(z, layers.Dense(2, name="point")(x), name=name)


def make_mlp_discriminator(hidden=(128, 128, 128), pack=1, dim=2, maxout=0, name="toy_discriminator"):
    """A ``dim``-D point (or a pack of ``pack`` points) -> one real-vs-fake logit.

    ``maxout`` > 0: each hidden layer is a Maxout of that many pieces instead of Dense + LeakyReLU.
    """
    point = keras.Input(shape=(dim,), name="point")
    x = Pack(pack)(point) if pack > 1 else point
    for width in hidden:
        if maxout:
            x = Maxout(width, maxout)(x)
        else:
            x = layers.LeakyReLU(negative_slope=0.2)(layers.Dense(width)(x))
    return keras.Model(point, layers.Dense(1, name="logit")(x), name=name)


# The ring experiment as VEEGAN and PacGAN ran it (PacGAN's published config for the ring):
# G 4 x 400 ReLU with BatchNorm, D 3 x 200 maxout units of 5 pieces, Adam 1e-4 with beta_1 0.8,
# batches of 100, 400 passes over 100,000 points = 400,000 steps.
PAPERS_SETTING = dict(hidden=(400, 400, 400, 400), d_hidden=(200, 200, 200), batch_norm=True, maxout=5,
                      batch_size=100, learning_rate=1e-4, beta_1=0.8)
PAPERS_STEPS = 400_000


def fit_discriminator(real, fake, steps=2000, batch_size=512, learning_rate=1e-3, seed=0):
    """Train a discriminator alone on samples of two fixed distributions, (N, dim) each.

    With the generator frozen, the best possible D is p_data / (p_data + p_g); the
    notebook compares this trained one against that formula.
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    discriminator = make_mlp_discriminator(hidden=(64, 64), dim=real.shape[1])
    optimizer = make_optimizer(discriminator, learning_rate, beta_1=0.5)

    @tf.function
    def step(real_batch, fake_batch):
        with tf.GradientTape() as tape:
            loss = discriminator_loss(discriminator(real_batch, training=True),
                                      discriminator(fake_batch, training=True))
        grads = tape.gradient(loss, discriminator.trainable_variables)
        optimizer.apply_gradients(zip(grads, discriminator.trainable_variables))
        return loss

    for _ in range(steps):
        step(real[rng.integers(0, len(real), batch_size)], fake[rng.integers(0, len(fake), batch_size)])
    return discriminator


def train_toy(generator_loss="non_saturating", pack=1, steps=3000,
              batch_size=512, learning_rate=1e-3, latent_dim=2, hidden=(128, 128, 128),
              cosine_decay=False, seed=0, snapshot_every=500, n_eval=2500,
              d_hidden=None, batch_norm=False, maxout=0, beta_1=0.5, beta_2=0.999, optimizer="adam",
              wasserstein=None):
    """Train a toy GAN on the ring; return its losses, snapshots and final coverage.

    Every step draws a fresh real batch (the data is unlimited; the papers drew 100,000 points once).
    Snapshots hold ``n_eval`` generated points from one fixed noise batch. ``d_hidden`` (default:
    ``hidden``), ``batch_norm``, ``maxout`` and ``beta_1`` let ``**PAPERS_SETTING`` in.
    ``wasserstein``: None plays the GAN game; a dict of ``steps.wgan_train_step``'s settings
    (``n_critic``, ``gp_weight``, ``clip_value``) plays WGAN's instead, the discriminator then
    being its critic (notebook 03). ``optimizer``: "adam" or "rmsprop" (the clipped WGAN's).
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    generator = make_mlp_generator(latent_dim, hidden, batch_norm=batch_norm)
    discriminator = make_mlp_discriminator(d_hidden or hidden, pack=pack, maxout=maxout)
    if cosine_decay:  # a falling learning rate lets the points settle onto the modes
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01)
    g_opt = make_optimizer(generator, learning_rate, beta_1=beta_1, beta_2=beta_2, kind=optimizer)
    d_opt = make_optimizer(discriminator, learning_rate, beta_1=beta_1, beta_2=beta_2, kind=optimizer)
    noise = tf.random.Generator.from_seed(seed)
    fixed_z = rng.standard_normal((n_eval, latent_dim)).astype(np.float32)
    history = {"step": [], "d_loss": [], "g_loss": [], **({"wasserstein": []} if wasserstein else {})}
    snapshots = {0: generator(fixed_z, training=False).numpy()}
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        if wasserstein:  # n_critic fresh batches, one per critic update
            real = tf.constant(sample_ring(wasserstein.get("n_critic", 5) * batch_size, rng))
            losses = wgan_train_step(generator, discriminator, g_opt, d_opt, real, noise, **wasserstein)
        else:
            real = tf.constant(sample_ring(batch_size, rng))
            losses = gan_train_step(generator, discriminator, g_opt, d_opt, real, noise,
                                    generator_loss)
        if step % 50 == 0:
            history["step"].append(step)
            for key in history.keys() - {"step"}:
                history[key].append(float(losses[key]))
        if step % snapshot_every == 0 or step == steps:
            snapshots[step] = generator(fixed_z, training=False).numpy()
    final = generator(rng.standard_normal((n_eval, latent_dim)).astype(np.float32), training=False).numpy()
    return {"history": history, "snapshots": snapshots, "points": final,
            "coverage": mode_coverage(final), "seconds": time.perf_counter() - t0,
            "generator": generator, "discriminator": discriminator}
