"""A run's resumable state: build it, save it every epoch, restore the newest usable copy.

The state is one ``tf.train.Checkpoint`` holding both networks, both optimizers, the moving
average of G (when the run keeps one), the epoch counter and every random state, so that a
resumed run continues exactly as an uninterrupted one would (notebooks/02_dcgan_mnist.ipynb,
section 9).
"""

import contextlib
from pathlib import Path

import keras
import tensorflow as tf

from . import data, models
from .config import CONDITIONAL, TRANSLATION, WASSERSTEIN
from .steps import ImagePool, make_optimizer

# Every optimizer a run's state may hold, by its name in the checkpoint, and the network it trains:
# a generator (learning_rate) or a discriminator (discriminator_learning_rate).
OPTIMIZERS = dict(g_optimizer="generator", g_ba_optimizer="generator_ba",
                  d_optimizer="discriminator", d_a_optimizer="discriminator_a")


def base_rate(config, optimizer_name):
    """The learning rate ``config`` gives the optimizer of that name, before any decay."""
    trains_generator = OPTIMIZERS[optimizer_name].startswith("generator")
    return config.learning_rate if trains_generator else config.discriminator_learning_rate


class CheckpointError(RuntimeError):
    """A run directory's checkpoints cannot be used; the message says how to recover."""


@contextlib.contextmanager
def dtype_policy(mixed_precision, bfloat16=False):
    """Layers created inside compute in float16 when ``mixed_precision``, in bfloat16 when
    ``bfloat16`` (weights stay float32 either way); the policy in force before is restored after."""
    previous = keras.config.dtype_policy()
    if mixed_precision or bfloat16:  # layers take the policy in force when they are created
        keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build(config, strategy=None):
    """Networks, optimizers, noise generator, and a tf.train.Checkpoint holding them all; under a
    tf.distribute ``strategy`` created in its scope, so that every variable is mirrored."""
    if strategy is not None:
        with strategy.scope():
            return build(config)
    if config.model in TRANSLATION:
        return build_cyclegan(config)
    num_classes = data.NUM_CLASSES if config.model in CONDITIONAL else 0
    width = config.width or models.COLOUR_WIDTH  # the colour networks' (a run saved before --width: 32)
    g_widths, d_widths = models.tutorial_widths(config.width or models.TUTORIAL_WIDTH)  # the 28x28 ones'
    with dtype_policy(config.mixed_precision, config.bfloat16):
        generator = models.make_generator(config.latent_dim, g_widths, num_classes=num_classes,
                                          image_shape=config.image_shape,
                                          synchronized=config.strategy != "default",
                                          categories=config.categories,
                                          upsampling=config.upsampling or "resize",
                                          width=width)
        # A WGAN critic is the same network without dropout, its output a score, not a logit.
        discriminator = models.make_discriminator(
            d_widths, dropout=config.d_dropout, spectral_norm=bool(config.spectral_norm),
            num_classes=num_classes, categories=config.categories,
            label_channel=bool(config.label_channel), image_shape=config.image_shape,
            width=width, name="critic" if config.model in WASSERSTEIN else "discriminator")
        extra = {}
        if config.ema_decay:  # a second copy of G whose weights trail the trained ones
            extra["ema_generator"] = keras.models.clone_model(generator)
            extra["ema_generator"].set_weights(generator.get_weights())
    kind = "rmsprop" if config.model == "wgan" else "adam"
    g_optimizer, d_optimizer = (
        make_optimizer(net, base_rate(config, name), config.beta_1, config.beta_2, kind,
                       loss_scaling=bool(config.mixed_precision))
        for name, net in [("g_optimizer", generator), ("d_optimizer", discriminator)])
    rng = tf.random.Generator.from_seed(config.seed)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    # Keras keeps each Dropout layer's random state outside the model's saved weights;
    # saving it too makes a resumed run draw the same dropout masks as an uninterrupted one.
    dropout_states = [layer.seed_generator.state for net in (generator, discriminator)
                      for layer in net.layers if hasattr(layer, "seed_generator")]
    return tf.train.Checkpoint(generator=generator, discriminator=discriminator,
                               g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                               rng=rng, epoch=epoch, dropout_states=dropout_states, **extra)


def build_cyclegan(config):
    """CycleGAN's state: G_AB as ``generator`` and the D_B that judges it as ``discriminator``
    (the names the loop and ``sample`` know), G_BA and D_A beside them, one optimizer per
    network, the two pools of past fakes, the noise generator (for the pools) and the epoch."""
    with dtype_policy(config.mixed_precision, config.bfloat16):
        nets = dict(generator=models.make_translator(name="generator_ab"),
                    generator_ba=models.make_translator(name="generator_ba"),
                    discriminator=models.make_patch_discriminator(name="discriminator_b"),
                    discriminator_a=models.make_patch_discriminator(name="discriminator_a"))
    optimizers = {name: make_optimizer(nets[net], base_rate(config, name), config.beta_1, config.beta_2,
                                       loss_scaling=bool(config.mixed_precision))
                  for name, net in OPTIMIZERS.items()}
    return tf.train.Checkpoint(**nets, **optimizers,
                               pool_a=ImagePool(config.pool_size, name="pool_a"),
                               pool_b=ImagePool(config.pool_size, name="pool_b"),
                               rng=tf.random.Generator.from_seed(config.seed),
                               epoch=tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"))


def sampling_generator(state):
    """The generator to draw samples from: the moving average of the weights when the run keeps one."""
    return getattr(state, "ema_generator", None) or state.generator


def checkpoint_manager(state, run_dir):
    """Keeps the newest three epochs in ``run_dir/checkpoints``."""
    directory = Path(run_dir) / "checkpoints"
    try:
        return tf.train.CheckpointManager(state, str(directory), max_to_keep=3)
    except Exception as e:  # the 'checkpoint' index file is not a readable text proto
        raise CheckpointError(
            f"{directory / 'checkpoint'} is damaged ({type(e).__name__}). It is only an index: "
            f"delete that one file and run again to resume from the newest ckpt-N files there."
        ) from e


def saved_checkpoints(manager):
    """Checkpoint paths, oldest first: from the manager's index, or from the files themselves
    when that index is damaged or missing (TensorFlow then quietly reports none)."""
    if manager.checkpoints:
        return list(manager.checkpoints)
    found = Path(manager.directory).glob("ckpt-*.index")
    numbered = sorted((int(p.stem.split("-")[1]), str(p.with_suffix(""))) for p in found
                      if p.stem.split("-")[1].isdigit())
    return [path for _, path in numbered]


def restore(state, manager, log=print):
    """Restore the newest usable checkpoint; return its epoch (0 when there is none).

    A damaged newest checkpoint is reported and the one before it tried, so one bad
    write never costs more than one epoch.
    """
    damaged = []
    for path in reversed(saved_checkpoints(manager)):
        try:
            state.restore(path).assert_existing_objects_matched()
        except Exception as e:  # TF reports damage as OpError, IndexError, ValueError, ...
            damaged.append(f"{path} ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
            continue
        for bad in damaged:
            log(f"warning: skipped damaged checkpoint {bad}")
        return int(state.epoch.numpy())
    if damaged:
        raise CheckpointError(
            "no usable checkpoint in " + str(Path(manager.directory)) + ":\n  "
            + "\n  ".join(damaged)
            + "\nThey may come from another model or setting, or be damaged. "
            "Train into a new --out directory (nothing here is deleted)."
        )
    return 0
