"""Pictures: sample grids, the training GIF and loss curves.

Grids and GIFs are written with Pillow (no figure machinery, fast enough to run every epoch);
the notebooks use the matplotlib helpers at the bottom.
"""

import math

import numpy as np
from PIL import Image

from .runlog import read_history


def to_uint8(images):
    """Images in [-1, 1] -> uint8 0..255 (values outside the range are clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, cols=None, pad=2):
    """Tile a batch (N, H, W, 1) in [-1, 1] into one uint8 (rows*H, cols*W) picture; colour
    images (N, H, W, 3) into a (rows*H, cols*W, 3) one."""
    images = to_uint8(images)
    if images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = image
    return grid


def save_grid(images, path, cols=None, scale=2):
    """Write a PNG grid of the images, enlarged ``scale`` times so digits are easy to see."""
    grid = Image.fromarray(image_grid(images, cols))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    grid.save(path)


def save_gif(png_paths, path, seconds_per_frame=0.3):
    """Join PNG frames into a looping GIF (the last frame held longer)."""
    frames = [Image.open(p) for p in png_paths]
    frames = [frame.convert("L" if frame.mode in ("L", "LA") else "RGB") for frame in frames]
    if not frames:
        raise ValueError("no frames to make a GIF from")
    ms = int(seconds_per_frame * 1000)
    durations = [ms] * (len(frames) - 1) + [ms * 5]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)


def show_grid(images, cols=None, title=None, ax=None, row_labels=None, pad=2):
    """Draw a grid of images with matplotlib (for notebooks); ``row_labels`` name the rows."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 5))[1]
    ax.imshow(image_grid(images, cols, pad), cmap="gray", vmin=0, vmax=255)  # cmap: grey images only
    ax.set_axis_off()
    if row_labels is not None:  # keep the axis for its tick labels, hide the rest of it
        ax.set_axis_on()
        height = images.shape[1] + pad
        ax.set_yticks([pad + height * r + images.shape[1] / 2 for r in range(len(row_labels))],
                      list(row_labels))
        ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, keys=("d_loss", "g_loss"), ax=None):
    """Plot per-epoch curves from a history table (dict of lists or a history.csv path)."""
    import matplotlib.pyplot as plt

    if not isinstance(history, dict):
        history = read_history(history)
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for key in keys:
        ax.plot(history["epoch"], history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    return ax
