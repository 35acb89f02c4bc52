"""One training step of a GAN, compiled with tf.function (notebooks/02_dcgan_mnist.ipynb).

The step reads no globals: it is handed the two networks, their optimizers, a batch of real
images and the random generator it draws noise from, and returns its losses. The batch size
comes from the batch itself, and the pipeline's batches all have one shape, so the function
is traced once and then runs as a graph. ``make_step`` picks a run's step from its settings.

Every loss is differentiated through ``optimizer.scale_loss``: a no-op for a plain optimizer,
and for mixed precision's ``LossScaleOptimizer`` the scaling that its ``apply_gradients`` undoes
(without it, Keras divides unscaled gradients by the loss scale, 2**15, and Adam barely moves).
"""

import tensorflow as tf

from . import hardware
from .config import CONDITIONAL, WASSERSTEIN
from .losses import (
    GENERATOR_LOSSES,
    critic_loss,
    discriminator_loss,
    generator_loss_wasserstein,
    gradient_penalty,
    mode_seeking_loss,
)
from .models import latent_dim_of


def make_optimizer(model, learning_rate=1e-4, beta_1=0.9, beta_2=0.999, kind="adam",
                   loss_scaling=False):
    """An optimizer for one network, built now so its slots exist before tracing or restoring.

    kind: "adam" or "rmsprop" (the original WGAN's choice). ``loss_scaling`` wraps it in
    Keras' LossScaleOptimizer, which mixed precision needs so small float16 gradients
    do not underflow to zero.
    """
    import keras

    if kind == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


@tf.function
def gan_train_step(generator, discriminator, g_optimizer, d_optimizer, real_images, rng,
                   generator_loss="non_saturating", labels=None, mode_seeking=0.0):
    """Update both networks once from the same fakes; return {'d_loss', 'g_loss'}.

    ``rng`` is a ``tf.random.Generator``: checkpointing it makes a resumed run draw the
    same noise an uninterrupted one would. ``generator_loss`` names an entry of
    ``losses.GENERATOR_LOSSES``. ``labels`` (conditional GAN, notebook 04): the real images'
    classes; the fakes are asked for the same classes, so both sides see one label mix.
    ``mode_seeking`` > 0 adds the mode-seeking term (Mao et al. 2019) to G's loss, see below.
    """
    z = rng.normal([tf.shape(real_images)[0], latent_dim_of(generator)])
    half = tf.shape(real_images)[0] // 2
    fake_labels = labels
    if mode_seeking and labels is not None:
        # The second half of the fakes repeats the first half's classes, so that the
        # mode-seeking term can compare two fakes of one class.
        fake_labels = tf.concat([labels[:half], labels[: tf.shape(labels)[0] - half]], 0)
    # Two tapes over one forward pass: the fakes feed both losses, as in the classic recipe.
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        if labels is None:
            fake_images = generator(z, training=True)
            real_logits = discriminator(real_images, training=True)
            fake_logits = discriminator(fake_images, training=True)
        else:
            fake_images = generator([z, fake_labels], training=True)
            real_logits = discriminator([real_images, labels], training=True)
            fake_logits = discriminator([fake_images, fake_labels], training=True)
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = GENERATOR_LOSSES[generator_loss](fake_logits)
        g_total = g_loss
        if mode_seeking:  # fakes i and half + i share a class and differ in their noise only
            g_total += mode_seeking * mode_seeking_loss(fake_images[:half], fake_images[half:2 * half],
                                                        z[:half], z[half:2 * half])
        scaled_d, scaled_g = d_optimizer.scale_loss(d_loss), g_optimizer.scale_loss(g_total)
    g_grads = g_tape.gradient(scaled_g, generator.trainable_variables)
    d_grads = d_tape.gradient(scaled_d, discriminator.trainable_variables)
    g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
    d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
    return {"d_loss": d_loss, "g_loss": g_loss}


@tf.function
def update_moving_average(average, model, decay, step):
    """Move every weight of ``average`` (BatchNorm statistics too) towards ``model``'s.

    The rate starts fast and settles at ``decay``: min(decay, (1 + step) / (10 + step)),
    so that early in a run the average is not dominated by the untrained first weights.
    Sampling from the average smooths out the generator's step-to-step wobble.
    """
    step = tf.cast(step, tf.float32)
    rate = tf.minimum(decay, (1.0 + step) / (10.0 + step))
    for slow, fast in zip(average.weights, model.weights):
        slow.assign(rate * slow + (1.0 - rate) * tf.cast(fast, slow.dtype))


@tf.function
def wgan_train_step(generator, critic, g_optimizer, c_optimizer, real_images, rng, n_critic=5,
                    gp_weight=10.0, clip_value=None):
    """n_critic critic updates, then one generator update (notebooks/03_wgan_gp.ipynb).

    ``real_images`` holds n_critic batches stacked, one per critic update. WGAN-GP: gp_weight
    10 and no clipping; the original WGAN: gp_weight 0 and clip_value 0.01. Losses go
    through ``optimizer.scale_loss``, a no-op unless the optimizer scales losses for mixed
    precision. Returns the critic's and generator's losses, the Wasserstein estimate
    E[f(real)] - E[f(fake)] and the gradient penalty, all from the last critic update.
    """
    batch_size = tf.shape(real_images)[0] // n_critic
    latent_dim = latent_dim_of(generator)
    penalty = tf.constant(0.0)
    for real in tf.split(real_images, n_critic):
        fake = generator(rng.normal([batch_size, latent_dim]), training=True)
        with tf.GradientTape() as tape:
            c_loss = critic_loss(critic(real, training=True), critic(fake, training=True))
            if gp_weight:
                alpha = rng.uniform([batch_size, 1, 1, 1])  # uniform, as in the paper
                penalty = gradient_penalty(critic, real, fake, alpha)
            total = c_loss + gp_weight * penalty
            scaled = c_optimizer.scale_loss(total)
        grads = tape.gradient(scaled, critic.trainable_variables)
        c_optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        if clip_value:  # the original WGAN's crude way to keep the critic Lipschitz
            for weight in critic.trainable_variables:
                weight.assign(tf.clip_by_value(weight, -clip_value, clip_value))
    with tf.GradientTape() as tape:
        fake = generator(rng.normal([batch_size, latent_dim]), training=True)
        g_loss = generator_loss_wasserstein(critic(fake, training=True))
        scaled = g_optimizer.scale_loss(g_loss)
    grads = tape.gradient(scaled, generator.trainable_variables)
    g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    return {"d_loss": total, "g_loss": g_loss, "wasserstein": -c_loss, "gradient_penalty": penalty}


def make_step(config):
    """The training step for ``config.model``, as ``step(state, batch) -> losses``.

    ``state`` is what ``gan_tf.checkpoints.build`` returns. The GAN (or WGAN) step and, when
    the run keeps one, the moving-average update are compiled together into one graph with
    the networks captured, not passed: one launch per step instead of two (about 5 % of a step
    here, benchmarks/step_speed.py).
    """
    if config.model in WASSERSTEIN:
        step = wgan_train_step
        options = dict(n_critic=config.n_critic,
                       gp_weight=config.gp_weight if config.model == "wgan_gp" else 0.0,
                       clip_value=config.clip_value if config.model == "wgan" else None)
    else:
        step, options = gan_train_step, dict(generator_loss=config.generator_loss,
                                             mode_seeking=config.mode_seeking)
    decay = tf.constant(config.ema_decay, tf.float32)

    def one_step(state, batch):
        # A cgan's batches are (images, labels) pairs; the others' are images alone.
        images, extra = (batch[0], dict(labels=batch[1])) if config.model in CONDITIONAL else (batch, {})
        losses = step.python_function(state.generator, state.discriminator, state.g_optimizer,
                                      state.d_optimizer, images, state.rng, **options, **extra)
        if config.ema_decay:
            update_moving_average.python_function(state.ema_generator, state.generator,
                                                  decay, state.g_optimizer.iterations)
        return losses

    compiled = {}

    def run(state, batch):
        if compiled.get("for") is not state:  # one graph per set of networks
            # XLA (jit_compile): the same Python function, compiled as one fused program.
            jit_compile = hardware.jit_compile_for(config.jit_compile)
            compiled.update({"for": state, "step": tf.function(lambda batch: one_step(state, batch),
                                                               jit_compile=jit_compile)})
        return compiled["step"](batch)

    return run
