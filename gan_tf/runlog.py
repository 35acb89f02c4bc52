"""A run's written record: config.json, history.csv, steps.csv and TensorBoard scalars.

Tables are rewritten whole through a temporary file, so a kill never leaves half a row, and
rows of an epoch whose checkpoint never landed are dropped on resume (gan_tf.train saves
the tables first and the checkpoint second).
"""

import copy
import csv
import dataclasses
import json
import os
from pathlib import Path

from .config import ConfigError, resumed

HISTORY_FIELDS = ["epoch", "d_loss", "g_loss", "seconds", "images_per_second"]


def read_history(path):
    """A CSV table such as history.csv as a dict of columns: floats, whole epochs and steps as ints."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {key: [] for key in (rows[0].keys() if rows else HISTORY_FIELDS)}
    for row in rows:
        for key, value in row.items():
            if key in ("epoch", "step") and value.isdigit():
                columns[key].append(int(value))
            elif value in ("", None):  # a metric not measured that epoch (see --eval-every)
                columns[key].append(float("nan"))
            else:
                try:
                    columns[key].append(float(value))
                except ValueError:  # a text column, e.g. the CPU a benchmark ran on
                    columns[key].append(value)
    return columns


def read_rows(path, last_epoch):
    """The rows of a CSV table up to ``last_epoch``: later ones belong to an epoch whose
    checkpoint never landed (a kill between writing the table and the checkpoint)."""
    if not last_epoch or not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= last_epoch]


def write_rows(path, rows):
    """Rewrite a whole table through a temporary file, so a kill never leaves half a row."""
    if not rows:
        return
    tmp = Path(str(path) + ".tmp")
    fields = list(dict.fromkeys(key for row in rows for key in row))  # every column, first-seen order
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_config(run_dir):
    """The settings saved in ``run_dir/config.json`` as a dict, or None for a new run."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except ValueError as e:  # json.JSONDecodeError
        raise ConfigError(f"{path} is not valid JSON ({e}). Restore it from a backup, or train "
                         "into a new --out directory.") from None
    saved.setdefault("ema_decay", 0.0)  # runs from before the moving average existed
    return saved


def checked_settings(config, run_dir):
    """A checked copy of ``config`` for a run in ``run_dir``. A run with a checkpoint keeps its
    saved settings (gan_tf.config.resumed refuses a change); a run killed before its first
    checkpoint has nothing to keep and starts over. Needs no TensorFlow: the CLI asks first."""
    config = copy.copy(config).validate()  # a copy that remembers what was left to the recipe
    has_checkpoint = any((Path(run_dir) / "checkpoints").glob("ckpt-*.index"))
    return resumed(config, load_config(run_dir) if has_checkpoint else None, run_dir)


def save_config(config, run_dir, new=True):
    """Write config.json: all settings for a new run; for a resumed one the saved settings are
    kept and only the new total of epochs and the strategy it now runs under are recorded."""
    path = Path(run_dir) / "config.json"
    saved = None if new else load_config(run_dir)
    settings = dataclasses.asdict(config)
    if saved is not None:
        settings = {**saved, "epochs": config.epochs, "strategy": config.strategy}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    os.replace(tmp, path)


class RunLog:
    """The tables and TensorBoard log of one run, continued from epoch ``start``."""

    def __init__(self, run_dir, start, log_every):
        import tensorflow as tf

        self.dir, self.log_every = Path(run_dir), log_every
        self.history_path, self.steps_path = self.dir / "history.csv", self.dir / "steps.csv"
        self.rows, self.step_rows = read_rows(self.history_path, start), read_rows(self.steps_path, start)
        self.writer = tf.summary.create_file_writer(str(self.dir / "tensorboard"))

    def add_step(self, epoch, step, losses):
        """Keep the losses of every ``log_every``-th step for steps.csv."""
        if self.log_every and step % self.log_every == 0:
            self.step_rows.append({"epoch": epoch, "step": step,
                                   **{k: round(v, 6) for k, v in losses.items()}})

    def add_epoch(self, row, grid):
        """Write an epoch's row to both tables and TensorBoard, with its sample grid (uint8 H x W,
        or H x W x 3 in colour)."""
        import tensorflow as tf

        with self.writer.as_default(step=row["epoch"]):
            for key, value in row.items():
                if key != "epoch":
                    tf.summary.scalar(key, value)
            tf.summary.image("samples", (grid[..., None] if grid.ndim == 2 else grid)[None])
        self.writer.flush()
        self.rows.append(row)
        write_rows(self.history_path, self.rows)
        write_rows(self.steps_path, self.step_rows)
