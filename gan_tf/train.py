"""The training loop: train a GAN into a run directory, resumably (notebooks/02_dcgan_mnist.ipynb).

A run directory DIR holds everything a run produces:

    DIR/config.json            the settings (a resumed run must keep them)
    DIR/history.csv            one row per epoch: epoch, d_loss, g_loss, (wasserstein,
                               gradient_penalty for WGANs; cycle, identity for a cyclegan),
                               seconds, images_per_second
    DIR/steps.csv              the same losses every ``log_every`` steps: epoch, step, ...
    DIR/samples/epoch_001.png  a grid from a fixed latent batch after every epoch (cgan: one row
                               per class, one column per latent vector; cyclegan: fixed test
                               images and their translations, sampling.translation_grid)
    DIR/frames/epoch_001_step_00469.png  the same grid inside an epoch, for progress.gif
                               (config.frames_per_epoch - 1 of them per epoch)
    DIR/checkpoints/           tf.train.CheckpointManager state, saved after every epoch
    DIR/tensorboard/           scalars and sample grids for TensorBoard
    DIR/progress.gif           the grids and frames as an animation (at the end; of a long run
                               GIF_FRAMES of them, evenly spaced)
    DIR/generator.keras        the generator to sample from (at the end; the moving average of
                               its weights when config.ema_decay > 0); a cyclegan writes
                               generator_ab.keras and generator_ba.keras instead

Training into a DIR that has a checkpoint continues from its last saved epoch, so a run
stopped by Ctrl-C or a kill loses at most the epoch in progress. The pieces live beside this
module: the state in ``checkpoints``, the tables in ``runlog``, the step in ``steps``, and what
changes on several devices (config.strategy) in ``distribute``.
"""

import math
import time
from pathlib import Path

import keras

from . import data, distribute, hardware, metrics, plots
from .checkpoints import (
    OPTIMIZERS,
    CheckpointError,
    base_rate,
    build,
    checkpoint_manager,
    restore,
    sampling_generator,
)
from .config import CONDITIONAL, TRANSLATION, WASSERSTEIN
from .runlog import RunLog, checked_settings, read_history, save_config
from .sampling import (
    GRID_COLUMNS,
    balanced_labels,
    fixed_latents,
    generate,
    grid_test_images,
    load_generator,
    translation_grid,
)
from .steps import make_step

# Names that lived here before the loop was split up; learners' code imports them from here.
__all__ = ["train", "TrainingDiverged", "CheckpointError", "build", "make_step", "read_history",
           "generate", "load_generator", "sampling_generator", "balanced_labels", "fixed_latents"]


GIF_FRAMES = 100  # at most this many pictures in progress.gif (30 s at 0.3 s each)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def train(config, run_dir, verbose=2, on_epoch_end=None):
    """Train ``config.model`` into ``run_dir`` up to ``config.epochs`` epochs in all.

    verbose: 0 silent, 1 one line per epoch, 2 also a progress bar per epoch.
    on_epoch_end(epoch, row): called after each epoch is saved, e.g. to draw a live plot.
    Returns the history as a dict of columns (None on a worker other than the chief, which
    writes nothing).
    """
    run_dir, log = Path(run_dir), print if verbose else (lambda *args, **kwargs: None)
    # First, before anything else touches the devices (a multi-worker strategy starts a server).
    strategy = distribute.make_strategy(config.strategy)
    config = settings(config, run_dir)  # a checked copy; the caller's config is left alone
    if strategy is not None:  # refuses a batch that does not split evenly across the replicas
        log(distribute.describe(strategy, config.strategy, config.batch_size))
    parts = training_data(config, progress=verbose >= 2)
    keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout
    state = build(config, strategy)
    manager, record, start = open_run(config, state, run_dir, strategy, log)
    if start:
        log(f"resumed from epoch {start}")
    if start >= config.epochs:
        log(f"{run_dir} already has {start} epochs (asked for {config.epochs}); nothing to train")
    step, pictures = make_step(config, strategy), progress_pictures(config, state)

    for epoch in range(start + 1, config.epochs + 1):
        batches = epoch_batches(config, parts, epoch, strategy)
        frame = frame_writer(config, pictures, run_dir, epoch, len(batches)) if record else None
        t0 = time.perf_counter()
        losses = run_epoch(step, state, batches, epoch, config, record, verbose, run_dir, frame)
        row = {"epoch": epoch, **losses}
        seconds = time.perf_counter() - t0
        row.update(seconds=round(seconds, 3),
                   images_per_second=round(len(batches) * config.images_per_step / seconds, 1))
        if record:  # the chief; other workers of a multi-worker run write nothing
            if config.eval_every and epoch % config.eval_every == 0:
                row.update(quality_scores(config, state, log))
            samples, columns = pictures()
            plots.save_grid(samples, run_dir / "samples" / f"epoch_{epoch:03d}.png", cols=columns)
            # Tables first, checkpoint second: a kill in between leaves an extra row that a resume
            # drops, never a checkpoint without its row.
            record.add_epoch(row, plots.image_grid(samples, columns))
        state.epoch.assign(epoch)
        manager.save(checkpoint_number=epoch)
        log(epoch_summary(row, config.epochs))
        if on_epoch_end:
            on_epoch_end(epoch, row)

    if record:
        save_networks(config, state, run_dir)
        if frames := gif_frames(run_dir, int(state.epoch.numpy())):
            plots.save_gif(frames, run_dir / "progress.gif")
    distribute.finish(strategy, None if record else Path(manager.directory).parent)
    return read_history(record.history_path) if record else None


def open_run(config, state, run_dir, strategy, log):
    """Restore ``state`` from the newest usable checkpoint in ``run_dir`` and open the run's
    record: returns (checkpoint manager, RunLog, epochs done). Only the chief writes the run
    directory: another worker of a multi-worker run gets no RunLog and a manager saving into a
    temporary folder of its own (every worker must take part in a save)."""
    manager = checkpoint_manager(state, run_dir)
    start = restore(state, manager, log)
    if not distribute.chief(strategy):
        return checkpoint_manager(state, distribute.worker_folder(strategy)), None, start
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir, new=not start)
    return manager, RunLog(run_dir, start, config.log_every), start


class Batches:
    """One epoch's batches: the tf.data pipeline, or under a strategy the same batches split
    across the replicas, with the number of (global) steps either way."""

    def __init__(self, dataset, strategy=None):
        self.dataset, self.steps = dataset, int(dataset.cardinality())
        self.batches = dataset if strategy is None else distribute.distribute_batches(strategy, dataset)

    def __len__(self):
        return self.steps

    def cardinality(self):  # what epoch_batches returned before (a tf.data.Dataset) answered
        return self.dataset.cardinality()

    def __iter__(self):
        return iter(self.batches)


def run_epoch(step, state, batches, epoch, config, record, verbose, run_dir, frame=None):
    """One pass over the batches; returns the mean of each loss. A NaN loss or Ctrl-C stops the
    run before anything of this epoch is saved. ``frame(i)``: called after step i (progress frames)."""
    from tqdm.auto import tqdm

    steps_per_epoch = len(batches)
    before, total = (epoch - 1) * steps_per_epoch, config.epochs * steps_per_epoch  # steps of the run
    sums = {}
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=verbose < 2,
               leave=False, unit="step")
    try:
        for i, batch in enumerate(batches, 1):
            if config.lr_decay:
                set_learning_rates(config, state, before + i, total)
            losses = {key: float(value) for key, value in step(state, batch).items()}
            if record:
                record.add_step(epoch, before + i, losses)
            for key, value in losses.items():
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"{key} became {value} at epoch {epoch}, step {i}. Nothing of epoch {epoch} "
                        f"was saved; {run_dir / 'checkpoints'} keeps epoch {epoch - 1}. Lower the "
                        "learning rate and run again to resume there.")
                sums[key] = sums.get(key, 0.0) + value
            if frame:
                frame(i)
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


def decayed_rate(rate, step, total_steps):
    """--lr-decay: the learning rate at step ``step`` (1, 2, ...) of ``total_steps``. As in the
    CycleGAN paper (Zhu et al. 2017), it stays at ``rate`` for the first half of the run and then
    falls in a straight line towards 0 (rate / (total_steps / 2) at the last step): late steps
    move the weights less, so the run settles instead of jittering around a level. (Decaying
    from the first step was tried: it halves the early progress, benchmarks/README.md.)"""
    half = total_steps / 2
    return rate * min(1.0, (total_steps - step + 1) / half)


def set_learning_rates(config, state, step, total_steps):
    """Give every optimizer of ``state`` its decayed rate for this step (G's from learning_rate,
    D's from its own). Set from the global step each time, a resumed run gets the same rates."""
    for name in OPTIMIZERS:
        optimizer = getattr(state, name, None)
        if optimizer is not None:
            optimizer.learning_rate = decayed_rate(base_rate(config, name), step, total_steps)


def settings(config, run_dir):
    """The checked settings a run trains with, as a new TrainConfig: a resumed run keeps its
    saved ones (runlog.checked_settings) and the speed-ups left at None are chosen for this machine."""
    return hardware.resolve(checked_settings(config, run_dir))


def training_data(config, progress=False):
    """What a run trains on, checked against the batch size: (images, labels or None), or for
    a cyclegan the two domains (images A, images B) (data.unpaired_domains); an image folder
    is read in colour at ``config.image_size`` (data.load_folder; ``progress``: with a progress bar)."""
    if data.is_image_folder(config.dataset):  # your own pictures: no labels, one domain
        images = data.load_folder(config.dataset, config.image_size, limit=config.limit, progress=progress)
        config.validate(len(images))
        return images, None
    images, labels = data.load(config.dataset, "train", data_dir=config.data_dir)
    images, labels = images[: config.limit], labels[: config.limit]
    config.validate(len(images))
    if config.model in TRANSLATION:
        return data.unpaired_domains(images, config.transform)
    return images, labels if config.model in CONDITIONAL else None


def epoch_batches(config, parts, epoch, strategy=None):
    """One epoch's ``Batches`` of ``training_data``. Seeding the shuffle by epoch makes a resumed
    run see the batches an uninterrupted one would, on any number of replicas."""
    seed = config.seed * 100_003 + epoch
    if config.model in TRANSLATION:
        return Batches(data.make_unpaired_dataset(*parts, batch_size=config.batch_size, seed=seed))
    dataset = data.make_dataset(*parts, batch_size=config.images_per_step, seed=seed)
    if strategy is not None and config.model in WASSERSTEIN:  # each replica: its rows of every critic batch
        replicas = strategy.num_replicas_in_sync
        dataset = dataset.map(lambda x: distribute.critic_rows_by_replica(x, config.n_critic, replicas))
    return Batches(dataset, strategy)


def progress_pictures(config, state):
    """A function drawing the epoch's grid as (images, columns): the fixed latent batch (cgan: a
    class per row), or for a cyclegan fixed test images and their translations (one per row)."""
    if config.model in TRANSLATION:
        images = grid_test_images(config)
        return lambda: translation_grid(state.generator, state.generator_ba, images, config.transform)
    generator, latents = sampling_generator(state), fixed_latents(config)
    columns = GRID_COLUMNS if config.model in CONDITIONAL or config.categories else None
    return lambda: (generator(latents, training=False).numpy(), columns)


def frame_writer(config, pictures, run_dir, epoch, steps_per_epoch):
    """A function of the step number i that saves the progress picture at frames_per_epoch - 1
    evenly spaced steps inside the epoch (the epoch's own grid is its last frame). Frames of this
    epoch or later, left by a run killed during it, are removed first."""
    folder = run_dir / "frames"
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("epoch_*_step_*.png"):
        if frame_time(stale)[0] >= epoch:
            stale.unlink()
    n = config.frames_per_epoch
    at = {round(k * steps_per_epoch / n) for k in range(1, n)} - {0, steps_per_epoch}

    def write(i):
        if i in at:
            samples, columns = pictures()
            plots.save_grid(samples, folder / f"epoch_{epoch:03d}_step_{i:05d}.png", cols=columns)
    return write


def frame_time(path):
    """(epoch, step) of a progress picture: epoch_003.png ends epoch 3 (step infinity),
    epoch_003_step_00469.png falls inside it. Epochs past 999 just have more digits."""
    epoch, _, step = path.stem[len("epoch_"):].partition("_step_")
    return int(epoch), int(step) if step else math.inf


def gif_frames(run_dir, last_epoch, limit=GIF_FRAMES):
    """The epoch grids and the frames inside each epoch up to ``last_epoch`` (the saved one), in
    the order they were drawn; of more than ``limit``, ``limit`` evenly spaced ones from the first
    to the last. A long run stays a short film: 300 epochs at 4 pictures each would otherwise make
    1,200 frames, a six-minute GIF that takes over a minute to encode."""
    frames = [*(run_dir / "samples").glob("epoch_*.png"), *(run_dir / "frames").glob("epoch_*_step_*.png")]
    frames = sorted((path for path in frames if frame_time(path)[0] <= last_epoch), key=frame_time)
    if len(frames) > limit:
        frames = [frames[round(i * (len(frames) - 1) / (limit - 1))] for i in range(limit)]
    return frames


def quality_scores(config, state, log):
    """The --eval-every measurements (gan_tf.metrics) for history.csv."""
    if config.model in TRANSLATION:
        return metrics.translation_training_scores(config, state.generator, state.generator_ba, log)
    return metrics.training_scores(config, sampling_generator(state), log)


def save_networks(config, state, run_dir):
    """The trained generator(s) as .keras files: generator.keras, or a cyclegan's
    generator_ab.keras and generator_ba.keras."""
    if config.model in TRANSLATION:
        state.generator.save(run_dir / "generator_ab.keras")
        state.generator_ba.save(run_dir / "generator_ba.keras")
    else:
        sampling_generator(state).save(run_dir / "generator.keras")


def epoch_summary(row, epochs):
    """The line printed after each epoch."""
    quality = f"  cFID {row['cfid']:.2f}" if "cfid" in row else ""
    if "kid" in row:
        quality += f"  KID {row['kid']:.4f}  coverage {row['coverage']:.2f}"
    if "label_accuracy" in row:
        quality += f"  label accuracy {row['label_accuracy']:.1%}"
    if "l1_ab" in row:
        quality += f"  L1 to the truth {row['l1_ab']:.3f} (A->B)  class kept {row['class_kept_ab']:.1%}"
    return (f"epoch {row['epoch']}/{epochs}: d_loss {row['d_loss']:.4f}  g_loss {row['g_loss']:.4f}"
            f"  {row['seconds']:.1f}s  ({row['images_per_second']:.0f} images/s){quality}")
