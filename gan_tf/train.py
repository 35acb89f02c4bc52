"""The training loop: train a GAN into a run directory, resumably (notebooks/02_dcgan_mnist.ipynb).

A run directory DIR holds everything a run produces:

    DIR/config.json            the settings (a resumed run must keep them)
    DIR/history.csv            one row per epoch: epoch, d_loss, g_loss, (wasserstein,
                               gradient_penalty for WGANs), seconds, images_per_second
    DIR/steps.csv              the same losses every ``log_every`` steps: epoch, step, ...
    DIR/samples/epoch_001.png  a grid from a fixed latent batch after every epoch (cgan: one row
                               per class, one column per latent vector)
    DIR/checkpoints/           tf.train.CheckpointManager state, saved after every epoch
    DIR/tensorboard/           scalars and sample grids for TensorBoard
    DIR/progress.gif           the grids as an animation (at the end)
    DIR/generator.keras        the generator to sample from (at the end; the moving average of
                               its weights when config.ema_decay > 0)

Training into a DIR that has a checkpoint continues from its last saved epoch, so a run
stopped by Ctrl-C or a kill loses at most the epoch in progress. The pieces live beside this
module: the state in ``checkpoints``, the tables in ``runlog``, the step in ``steps``.
"""

import math
import time
from pathlib import Path

import keras

from . import data, hardware, metrics, plots
from .checkpoints import CheckpointError, build, checkpoint_manager, restore, sampling_generator
from .config import CONDITIONAL
from .runlog import RunLog, checked_settings, read_history, save_config
from .sampling import GRID_COLUMNS, balanced_labels, fixed_latents, generate, load_generator
from .steps import make_step

# Names that lived here before the loop was split up; learners' code imports them from here.
__all__ = ["train", "TrainingDiverged", "CheckpointError", "build", "make_step", "read_history",
           "generate", "load_generator", "sampling_generator", "balanced_labels", "fixed_latents"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def train(config, run_dir, verbose=2, on_epoch_end=None):
    """Train ``config.model`` into ``run_dir`` up to ``config.epochs`` epochs in all.

    verbose: 0 silent, 1 one line per epoch, 2 also a progress bar per epoch.
    on_epoch_end(epoch, row): called after each epoch is saved, e.g. to draw a live plot.
    Returns the history as a dict of columns.
    """
    run_dir, log = Path(run_dir), print if verbose else (lambda *args, **kwargs: None)
    config = settings(config, run_dir)  # a checked copy; the caller's config is left alone
    images, labels = training_data(config)
    keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout
    state = build(config)
    manager = checkpoint_manager(state, run_dir)
    start = restore(state, manager, log)
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir, new=not start)
    record = RunLog(run_dir, start, config.log_every)
    if start:
        log(f"resumed from epoch {start}")
    if start >= config.epochs:
        log(f"{run_dir} already has {start} epochs (asked for {config.epochs}); nothing to train")
    step, generator, latents = make_step(config), sampling_generator(state), fixed_latents(config)
    columns = GRID_COLUMNS if config.model in CONDITIONAL else None

    for epoch in range(start + 1, config.epochs + 1):
        # Seeding the shuffle by epoch makes a resumed run see the batches an uninterrupted one would.
        batches = data.make_dataset(images, labels, batch_size=config.images_per_step,
                                    seed=config.seed * 100_003 + epoch)
        t0 = time.perf_counter()
        row = {"epoch": epoch, **run_epoch(step, state, batches, epoch, config, record, verbose, run_dir)}
        seconds = time.perf_counter() - t0
        row.update(seconds=round(seconds, 3),
                   images_per_second=round(len(images) // config.images_per_step
                                           * config.images_per_step / seconds, 1))
        if config.eval_every and epoch % config.eval_every == 0:
            row.update(metrics.training_scores(config, generator, log))
        samples = generator(latents, training=False).numpy()
        plots.save_grid(samples, run_dir / "samples" / f"epoch_{epoch:03d}.png", cols=columns)
        # Tables first, checkpoint second: a kill in between leaves an extra row that a resume
        # drops, never a checkpoint without its row.
        record.add_epoch(row, plots.image_grid(samples, columns))
        state.epoch.assign(epoch)
        manager.save(checkpoint_number=epoch)
        log(epoch_summary(row, config.epochs))
        if on_epoch_end:
            on_epoch_end(epoch, row)

    generator.save(run_dir / "generator.keras")
    if frames := sorted((run_dir / "samples").glob("epoch_*.png")):
        plots.save_gif(frames, run_dir / "progress.gif")
    return read_history(record.history_path)


def run_epoch(step, state, batches, epoch, config, record, verbose, run_dir):
    """One pass over the batches; returns the mean of each loss. A NaN loss or Ctrl-C stops the
    run before anything of this epoch is saved."""
    from tqdm.auto import tqdm

    steps_per_epoch = int(batches.cardinality())
    sums = {}
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=verbose < 2,
               leave=False, unit="step")
    try:
        for i, batch in enumerate(batches, 1):
            losses = {key: float(value) for key, value in step(state, batch).items()}
            record.add_step(epoch, (epoch - 1) * steps_per_epoch + i, losses)
            for key, value in losses.items():
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"{key} became {value} at epoch {epoch}, step {i}. Nothing of epoch {epoch} "
                        f"was saved; {run_dir / 'checkpoints'} keeps epoch {epoch - 1}. Lower the "
                        "learning rate and run again to resume there.")
                sums[key] = sums.get(key, 0.0) + value
            bar.update()
            bar.set_postfix({key: f"{value / i:.3f}" for key, value in sums.items()}, refresh=False)
    except KeyboardInterrupt:
        if verbose:
            print(f"\ninterrupted during epoch {epoch}; {run_dir} keeps epoch {epoch - 1}. "
                  "Run the same command again to resume.")
        raise
    finally:
        bar.close()
    return {key: round(value / steps_per_epoch, 6) for key, value in sums.items()}


def settings(config, run_dir):
    """The checked settings a run trains with, as a new TrainConfig: a resumed run keeps its
    saved ones (runlog.checked_settings) and the speed-ups left at None are chosen for this machine."""
    return hardware.resolve(checked_settings(config, run_dir))


def training_data(config):
    """The training images (and, for a cgan, labels) a run uses, checked against the batch size."""
    images, labels = data.load(config.dataset, "train", data_dir=config.data_dir)
    images, labels = images[: config.limit], labels[: config.limit]
    config.validate(len(images))
    return images, labels if config.model in CONDITIONAL else None


def epoch_summary(row, epochs):
    """The line printed after each epoch."""
    quality = f"  cFID {row['cfid']:.2f}" if "cfid" in row else ""
    if "label_accuracy" in row:
        quality += f"  label accuracy {row['label_accuracy']:.1%}"
    return (f"epoch {row['epoch']}/{epochs}: d_loss {row['d_loss']:.4f}  g_loss {row['g_loss']:.4f}"
            f"  {row['seconds']:.1f}s  ({row['images_per_second']:.0f} images/s){quality}")
