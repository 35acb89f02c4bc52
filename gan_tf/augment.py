"""DiffAugment (Zhao et al. 2020): random changes to every image the discriminator sees, real or
fake, written with differentiable operations so the generator learns through them
(notebooks/07_your_own_images.ipynb).

With a few thousand images a discriminator soon memorises the training set: it tells real from
fake by recognising each real picture, and the generator gets no useful signal. Showing D every
image shifted, recoloured and with a hole cut out means it never sees the same real picture
twice; since the fakes go through the same changes, G is not taught to draw the changes.

Each policy is applied to a whole batch with a fresh random draw per image:

color        brightness + U(-0.5, 0.5); saturation x U(0, 2); contrast x U(0.5, 1.5)
translation  a shift by up to 1/8 of the image in each direction, the gap filled with 0 (grey)
cutout       a square of half the image's side, at a random place, set to 0

Images are in [-1, 1]; colour changes may step outside it, as in the paper.
"""

import tensorflow as tf

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def color(images, rng):
    n = tf.shape(images)[0]
    images = images + (rng.uniform([n, 1, 1, 1]) - 0.5)
    channel_mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - channel_mean) * (rng.uniform([n, 1, 1, 1]) * 2) + channel_mean
    image_mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - image_mean) * (rng.uniform([n, 1, 1, 1]) + 0.5) + image_mean


def translation(images, rng, ratio=TRANSLATION_RATIO):
    """Shift each image by its own whole number of pixels; what moves out is lost, what moves in is 0."""
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = rng.uniform([n], -sy, sy + 1, dtype=tf.int64)
    dx = rng.uniform([n], -sx, sx + 1, dtype=tf.int64)
    padded = tf.pad(images, [[0, 0], [sy, sy], [sx, sx], [0, 0]])
    # Output pixel (i, j) of image b reads padded pixel (i + sy - dy_b, j + sx - dx_b).
    rows = tf.range(h, dtype=tf.int64)[None] + sy - dy[:, None]
    cols = tf.range(w, dtype=tf.int64)[None] + sx - dx[:, None]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def cutout(images, rng, ratio=CUTOUT_RATIO):
    """Set a square of ``ratio`` times the image's side to 0, centred anywhere in the image
    (so near an edge, part of it falls outside)."""
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = rng.uniform([n, 1], 0, h + (1 - ch % 2))
    cx = rng.uniform([n, 1], 0, w + (1 - cw % 2))
    cy, cx = tf.floor(cy), tf.floor(cx)
    y = tf.range(h, dtype=tf.float32)[None]
    x = tf.range(w, dtype=tf.float32)[None]
    inside_y = tf.logical_and(y >= cy - ch // 2, y < cy - ch // 2 + ch)  # (n, h)
    inside_x = tf.logical_and(x >= cx - cw // 2, x < cx - cw // 2 + cw)  # (n, w)
    hole = tf.logical_and(inside_y[:, :, None], inside_x[:, None, :])
    return images * tf.cast(tf.logical_not(hole), images.dtype)[..., None]


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images, rng, policy="color,translation,cutout"):
    """Apply the comma-separated ``policy`` (names of POLICIES, in order) to a batch; "" returns
    the images unchanged. ``rng`` is a ``tf.random.Generator`` (checkpointed with the run)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        images = POLICIES[name](images, rng)
    return images
