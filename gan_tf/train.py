"""The training loop: train a GAN into a run directory, resumably (notebooks/02_dcgan_mnist.ipynb).

A run directory DIR holds everything a run produces:

    DIR/config.json            the settings (checked when a run is resumed)
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
stopped by Ctrl-C or a kill loses at most the epoch in progress.
"""

import csv
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import data, hardware, models, plots
from .config import CONDITIONAL, WASSERSTEIN, ConfigError, TrainConfig
from .steps import gan_train_step, make_optimizer, update_moving_average, wgan_train_step

HISTORY_FIELDS = ["epoch", "d_loss", "g_loss", "seconds", "images_per_second"]
# Settings a checkpoint cannot be carried across: resuming with another value is refused.
STRUCTURAL = ("model", "dataset", "latent_dim", "mixed_precision", "ema_decay")
GRID_COLUMNS = 10  # cgan grids: this many latent vectors per class row


class CheckpointError(RuntimeError):
    """A run directory's checkpoints cannot be used; the message says how to recover."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


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


def _read_rows(path, last_epoch):
    """The rows of a CSV table up to ``last_epoch``: later ones belong to an epoch whose
    checkpoint never landed (a kill between writing the table and the checkpoint)."""
    if not last_epoch or not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= last_epoch]


def _write_rows(path, rows):
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


def fixed_latents(config):
    """The generator input behind every epoch's grid: the same for the whole run and on resume.

    cgan: GRID_COLUMNS latent vectors, repeated for every class, with the labels beside them.
    """
    rng = np.random.default_rng(config.seed)
    if config.model not in CONDITIONAL:
        return rng.standard_normal((config.grid_size, config.latent_dim)).astype(np.float32)
    z = rng.standard_normal((GRID_COLUMNS, config.latent_dim)).astype(np.float32)
    labels = np.repeat(np.arange(data.NUM_CLASSES, dtype=np.int32), GRID_COLUMNS)
    return [np.tile(z, (data.NUM_CLASSES, 1)), labels]


def build(config):
    """Networks, optimizers, noise generator, and a tf.train.Checkpoint holding them all."""
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:  # layers take the policy in force when they are created
        keras.config.set_dtype_policy("mixed_float16")
    num_classes = data.NUM_CLASSES if config.model in CONDITIONAL else 0
    try:
        generator = models.make_generator(config.latent_dim, num_classes=num_classes)
        # A WGAN critic is the same network without dropout, its output a score, not a logit.
        discriminator = models.make_discriminator(
            dropout=0.0 if config.model in WASSERSTEIN else 0.3, num_classes=num_classes,
            name="critic" if config.model in WASSERSTEIN else "discriminator")
        extra = {}
        if config.ema_decay:  # a second copy of G whose weights trail the trained ones
            extra["ema_generator"] = keras.models.clone_model(generator)
            extra["ema_generator"].set_weights(generator.get_weights())
    finally:
        keras.config.set_dtype_policy(previous_policy)
    kind = "rmsprop" if config.model == "wgan" else "adam"
    g_optimizer, d_optimizer = (
        make_optimizer(net, config.learning_rate, config.beta_1, config.beta_2, kind,
                       loss_scaling=config.mixed_precision)
        for net in (generator, discriminator))
    rng = tf.random.Generator.from_seed(config.seed)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    # Keras keeps each Dropout layer's random state outside the model's saved weights;
    # saving it too makes a resumed run draw the same dropout masks as an uninterrupted one.
    dropout_states = [layer.seed_generator.state for net in (generator, discriminator)
                      for layer in net.layers if hasattr(layer, "seed_generator")]
    return tf.train.Checkpoint(generator=generator, discriminator=discriminator,
                               g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                               rng=rng, epoch=epoch, dropout_states=dropout_states, **extra)


def make_step(config):
    """The training step for ``config.model``, as ``step(checkpoint, batch) -> losses``.

    The GAN (or WGAN) step and, when the run keeps one, the moving-average update are
    compiled together into one graph with the networks captured, not passed: one launch per
    step instead of two. That saves what a separate update call cost, about 5 % of a step
    here (benchmarks/step_speed.py).
    """
    if config.model in WASSERSTEIN:
        step = wgan_train_step
        options = dict(n_critic=config.n_critic,
                       gp_weight=config.gp_weight if config.model == "wgan_gp" else 0.0,
                       clip_value=config.clip_value if config.model == "wgan" else None)
    else:
        step, options = gan_train_step, dict(generator_loss=config.generator_loss)
    decay = tf.constant(config.ema_decay, tf.float32)
    jit_compile = hardware.jit_compile_for(config.jit_compile)

    def one_step(checkpoint, batch):
        # A cgan's batches are (images, labels) pairs; the others' are images alone.
        images, extra = (batch[0], dict(labels=batch[1])) if config.model in CONDITIONAL else (batch, {})
        losses = step.python_function(checkpoint.generator, checkpoint.discriminator,
                                      checkpoint.g_optimizer, checkpoint.d_optimizer, images,
                                      checkpoint.rng, **options, **extra)
        if config.ema_decay:
            update_moving_average.python_function(checkpoint.ema_generator, checkpoint.generator,
                                                  decay, checkpoint.g_optimizer.iterations)
        return losses

    compiled = {}

    def run(checkpoint, batch):
        if compiled.get("for") is not checkpoint:  # one graph per set of networks
            # XLA (jit_compile): the same Python function, compiled as one fused program.
            compiled.update({"for": checkpoint, "step": tf.function(
                lambda batch: one_step(checkpoint, batch), jit_compile=jit_compile)})
        return compiled["step"](batch)

    return run


def _checkpoint_manager(checkpoint, run_dir):
    directory = Path(run_dir) / "checkpoints"
    try:
        return tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3)
    except Exception as e:  # the 'checkpoint' index file is not a readable text proto
        raise CheckpointError(
            f"{directory / 'checkpoint'} is damaged ({type(e).__name__}). It is only an index: "
            f"delete that one file and run again to resume from the newest ckpt-N files there."
        ) from e


def _saved_checkpoints(manager):
    """Checkpoint paths, oldest first: from the manager's index, or from the files themselves
    when that index is damaged or missing (TensorFlow then quietly reports none)."""
    if manager.checkpoints:
        return list(manager.checkpoints)
    found = Path(manager.directory).glob("ckpt-*.index")
    numbered = sorted((int(p.stem.split("-")[1]), str(p.with_suffix(""))) for p in found
                      if p.stem.split("-")[1].isdigit())
    return [path for _, path in numbered]


def restore(checkpoint, manager, log=print):
    """Restore the newest usable checkpoint; return its epoch (0 when there is none).

    A damaged newest checkpoint is reported and the one before it tried, so one bad
    write never costs more than one epoch.
    """
    damaged = []
    for path in reversed(_saved_checkpoints(manager)):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except Exception as e:  # TF reports damage as OpError, IndexError, ValueError, ...
            damaged.append(f"{path} ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
            continue
        for bad in damaged:
            log(f"warning: skipped damaged checkpoint {bad}")
        return int(checkpoint.epoch.numpy())
    if damaged:
        raise CheckpointError(
            "no usable checkpoint in " + str(Path(manager.directory)) + ":\n  "
            + "\n  ".join(damaged)
            + "\nThey may come from another model or setting, or be damaged. "
            "Train into a new --out directory (nothing here is deleted)."
        )
    return 0


def _check_resume(config, run_dir):
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    saved.setdefault("ema_decay", 0.0)  # runs from before the moving average existed
    # Only whether there is an average matters to the checkpoint, not its decay.
    same = {k: bool(saved[k]) == bool(getattr(config, k)) if k == "ema_decay"
            else saved.get(k) == getattr(config, k) for k in STRUCTURAL}
    clash = [f"{k}: saved {saved.get(k)!r}, now {getattr(config, k)!r}" for k in STRUCTURAL if not same[k]]
    if clash:
        raise ConfigError(f"{run_dir} holds a run with other settings ({'; '.join(clash)}). "
                          "Use the same settings to resume it, or a new --out directory.")


def train(config, run_dir, verbose=2, on_epoch_end=None):
    """Train ``config.model`` into ``run_dir`` up to ``config.epochs`` epochs in all.

    verbose: 0 silent, 1 one line per epoch, 2 also a progress bar per epoch.
    on_epoch_end(epoch, row): called after each epoch is saved (notebooks draw live plots).
    Returns the history as a dict of columns.
    """
    config.validate()
    run_dir = Path(run_dir)
    log = print if verbose else (lambda *a, **k: None)
    _check_resume(config, run_dir)
    images, labels = data.load(config.dataset, "train", data_dir=config.data_dir)
    images, labels = images[: config.limit], labels[: config.limit]
    if config.model not in CONDITIONAL:
        labels = None
    config.validate(len(images))

    keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout
    checkpoint = build(config)
    generator = sampling_generator(checkpoint)
    manager = _checkpoint_manager(checkpoint, run_dir)
    start = restore(checkpoint, manager, log)

    config.jit_compile = hardware.jit_compile_for(config.jit_compile)  # recorded: what this machine chose
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    history_path, steps_path = run_dir / "history.csv", run_dir / "steps.csv"
    rows, step_rows = _read_rows(history_path, start), _read_rows(steps_path, start)
    if start:
        log(f"resumed from epoch {start}")
    if start >= config.epochs:
        log(f"{run_dir} already has {start} epochs (asked for {config.epochs}); nothing to train")

    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
    latents = fixed_latents(config)
    steps_per_epoch = len(images) // config.images_per_step
    train_step = make_step(config)
    from tqdm.auto import tqdm

    for epoch in range(start + 1, config.epochs + 1):
        # Seeding the shuffle by epoch makes a resumed run see the batches an uninterrupted one would.
        dataset = data.make_dataset(images, labels, batch_size=config.images_per_step,
                                    seed=config.seed * 100_003 + epoch)
        sums = {}
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}",
                   disable=verbose < 2, leave=False, unit="step")
        t0 = time.perf_counter()
        try:
            for step, batch in enumerate(dataset, 1):
                losses = {key: float(value) for key, value in train_step(checkpoint, batch).items()}
                global_step = (epoch - 1) * steps_per_epoch + step
                if config.log_every and global_step % config.log_every == 0:
                    step_rows.append({"epoch": epoch, "step": global_step,
                                      **{k: round(v, 6) for k, v in losses.items()}})
                for key, value in losses.items():
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"{key} became {value} at epoch {epoch}, step {step}. Nothing of "
                            f"epoch {epoch} was saved; {run_dir / 'checkpoints'} keeps epoch "
                            f"{epoch - 1}. Lower the learning rate and run again to resume there.")
                    sums[key] = sums.get(key, 0.0) + value
                bar.update()
                bar.set_postfix({k: f"{v / step:.3f}" for k, v in sums.items()}, refresh=False)
        except KeyboardInterrupt:
            log(f"\ninterrupted during epoch {epoch}; {run_dir} keeps epoch {epoch - 1}. "
                "Run the same command again to resume.")
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - t0

        samples = generator(latents, training=False).numpy()
        columns = GRID_COLUMNS if config.model in CONDITIONAL else None
        plots.save_grid(samples, run_dir / "samples" / f"epoch_{epoch:03d}.png", cols=columns)
        row = {"epoch": epoch, **{k: round(v / steps_per_epoch, 6) for k, v in sums.items()},
               "seconds": round(seconds, 3),
               "images_per_second": round(steps_per_epoch * config.images_per_step / seconds, 1)}
        if config.eval_every and epoch % config.eval_every == 0:
            row.update(_quality(config, generator, log))
        with writer.as_default(step=epoch):
            for key, value in row.items():
                if key != "epoch":
                    tf.summary.scalar(key, value)
            tf.summary.image("samples", plots.image_grid(samples, columns)[None, :, :, None])
        writer.flush()
        # History first, checkpoint second: a kill in between leaves an extra row that the
        # resume above drops, never a checkpoint without its row.
        rows.append(row)
        _write_rows(history_path, rows)
        _write_rows(steps_path, step_rows)
        checkpoint.epoch.assign(epoch)
        manager.save(checkpoint_number=epoch)
        quality = f"  cFID {row['cfid']:.2f}" if "cfid" in row else ""
        if "label_accuracy" in row:
            quality += f"  label accuracy {row['label_accuracy']:.1%}"
        log(f"epoch {epoch}/{config.epochs}: d_loss {row['d_loss']:.4f}  g_loss {row['g_loss']:.4f}"
            f"  {seconds:.1f}s  ({row['images_per_second']:.0f} images/s){quality}")
        if on_epoch_end:
            on_epoch_end(epoch, row)

    generator.save(run_dir / "generator.keras")
    frames = sorted((run_dir / "samples").glob("epoch_*.png"))
    if frames:
        plots.save_gif(frames, run_dir / "progress.gif")
    return read_history(history_path)


_EVALUATORS = {}
QUALITY_KEYS = ("cfid", "inception_score", "classes_covered", "precision", "recall")


def _quality(config, generator, log):
    """The evaluation metrics of 2,000 samples (gan_tf.metrics) for history.csv; for a
    conditional generator also its label accuracy, with every class asked for equally often."""
    from .metrics import Evaluator

    if config.dataset not in _EVALUATORS:  # the classifier and real features, once per process
        _EVALUATORS[config.dataset] = Evaluator(config.dataset, config.data_dir, log)
    evaluator = _EVALUATORS[config.dataset]
    labels = balanced_labels(2000) if models.num_classes_of(generator) else None
    images = generate(generator, 2000, seed=config.seed, labels=labels)
    scores = evaluator.evaluate(images)
    row = {key: round(float(scores[key]), 4) for key in QUALITY_KEYS}
    if labels is not None:
        row["label_accuracy"] = round(evaluator.label_accuracy(images, labels), 4)
    return row


def load_generator(run_dir):
    """The generator of a run (the moving average of its weights, when the run keeps one):
    from its newest checkpoint, else from generator.keras."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if config_path.exists() and (run_dir / "checkpoints" / "checkpoint").exists():
        saved = json.loads(config_path.read_text())
        saved.setdefault("ema_decay", 0.0)  # runs from before the moving average existed
        config = TrainConfig(**saved)
        checkpoint = build(config)
        manager = _checkpoint_manager(checkpoint, run_dir)
        if restore(checkpoint, manager, log=print):
            return sampling_generator(checkpoint)
    if (run_dir / "generator.keras").exists():
        return keras.models.load_model(run_dir / "generator.keras")
    raise CheckpointError(f"{run_dir} has no checkpoint and no generator.keras; "
                          "train into it first (python -m gan_tf train ... --out DIR).")


def sampling_generator(checkpoint):
    """The generator to draw samples from: the moving average of the weights when the run keeps one."""
    return getattr(checkpoint, "ema_generator", None) or checkpoint.generator


def balanced_labels(n, num_classes=data.NUM_CLASSES):
    """0, 1, ..., 9, 0, 1, ...: n labels asking for every class equally often."""
    return np.arange(n, dtype=np.int32) % num_classes


def generate(generator, n, seed=0, batch_size=500, labels=None):
    """n images from a generator as float32 (n, 28, 28, 1) in [-1, 1].

    ``labels`` (conditional generators only): one class for all images, or one per image;
    left out, every class is asked for equally often.
    """
    num_classes = models.num_classes_of(generator)
    if labels is not None and not num_classes:
        raise ValueError("this generator is unconditional: it cannot be asked for a class")
    if num_classes:
        labels = balanced_labels(n, num_classes) if labels is None else np.broadcast_to(
            np.asarray(labels, dtype=np.int32), (n,))
        if labels.min() < 0 or labels.max() >= num_classes:
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise ValueError(f"label {bad} is not a class of this generator; "
                             f"it knows classes 0 to {num_classes - 1}")
    rng = np.random.default_rng(seed)
    latent_dim = models.latent_dim_of(generator)
    chunks = []
    for start in range(0, n, batch_size):
        z = rng.standard_normal((min(batch_size, n - start), latent_dim)).astype(np.float32)
        inputs = z if labels is None else [z, labels[start:start + len(z)]]
        chunks.append(generator(inputs, training=False).numpy())
    return np.concatenate(chunks).astype(np.float32)
