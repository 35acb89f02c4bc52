"""Pictures: sample grids, the training GIF and loss curves.

Grids and GIFs are written with Pillow (no figure machinery, fast enough to run every epoch);
the notebooks use the matplotlib helpers at the bottom.
"""

import io
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


def latent_walk(generator, amounts, direction, start, label=None):
    """Images of ``start + a * direction`` for each a in ``amounts`` (one noise vector walked along
    one direction); a conditional generator draws them all as class ``label``."""
    steps = np.asarray(amounts, np.float32)[:, None] * np.asarray(direction, np.float32)[None]
    z = np.asarray(start, np.float32)[None] + steps
    if len(generator.inputs) == 2:
        return generator([z, np.full(len(z), label or 0, np.int32)], training=False).numpy()
    return generator(z, training=False).numpy()


def latent_explorer(generator, directions=4, span=3.0, columns=7, seed=0, class_names=None, scale=6):
    """Walk one noise vector along random unit directions of the latent space, two ways.

    For every reader: a static grid, ``columns`` steps from -span to +span, one row per direction
    (for a conditional generator: one row per class, along the first direction); in a stored
    notebook this is what shows, drawn on a new matplotlib figure. In a live Jupyter kernel with
    ipywidgets: sliders for the direction and the distance, and for a conditional generator a menu
    of classes, redrawn on every move. Returns the widget (display it after ``plt.show()``), or
    None where ipywidgets is missing.
    """
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    latent = generator.inputs[0].shape[-1]
    start = rng.standard_normal(latent)
    axes = rng.standard_normal((directions, latent))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    amounts = np.linspace(-span, span, columns)
    conditional = len(generator.inputs) == 2
    names = list(class_names) if class_names is not None else [str(k) for k in range(10)]
    if conditional:
        rows = [latent_walk(generator, amounts, axes[0], start, k) for k in range(len(names))]
        row_labels, title = names, f"one noise vector moved from {-span:g} to +{span:g}, every class"
    else:
        rows = [latent_walk(generator, amounts, axes[d], start) for d in range(directions)]
        row_labels = [f"direction {d}" for d in range(directions)]
        title = f"one noise vector moved from {-span:g} to +{span:g} along {directions} random directions"
    show_grid(np.concatenate(rows), cols=columns, row_labels=row_labels, title=title,
              ax=plt.subplots(figsize=(columns * 0.9, len(rows) * 0.95 + 0.6))[1])
    try:
        import ipywidgets as widgets
    except ImportError:
        return None

    picture = widgets.Image(format="png")
    direction = widgets.IntSlider(0, 0, directions - 1, description="direction")
    amount = widgets.FloatSlider(0.0, min=-span, max=span, step=span / 10, description="distance")
    label = widgets.Dropdown(options=[(n, k) for k, n in enumerate(names)], value=0, description="class")

    def redraw(_=None):
        image = latent_walk(generator, [amount.value], axes[direction.value], start, label.value)
        grid = Image.fromarray(image_grid(image, cols=1, pad=0))
        buffer = io.BytesIO()
        grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST).save(buffer, format="png")
        picture.value = buffer.getvalue()

    controls = [direction, amount] + ([label] if conditional else [])
    for control in controls:
        control.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(controls), picture])
