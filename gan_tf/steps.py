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
from .augment import diff_augment
from .config import CONDITIONAL, TRANSLATION, WASSERSTEIN
from .distribute import ReplicaNoise, replica_share
from .losses import (
    GENERATOR_LOSSES,
    code_loss,
    critic_loss,
    discriminator_loss,
    generator_loss_wasserstein,
    gradient_penalty,
    l1_distance,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    mode_seeking_loss,
)
from .models import code_of, latent_dim_of


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
                   generator_loss="non_saturating", labels=None, mode_seeking=0.0, augment="", r1_weight=0.0):
    """Update both networks once from the same fakes; return {'d_loss', 'g_loss'}.

    ``rng`` is a ``tf.random.Generator``: checkpointing it makes a resumed run draw the
    same noise an uninterrupted one would. ``generator_loss`` names an entry of
    ``losses.GENERATOR_LOSSES``. ``labels`` (conditional GAN, notebook 04): the real images'
    classes; the fakes are asked for the same classes, so both sides see one label mix.
    ``mode_seeking`` > 0 adds the mode-seeking term (Mao et al. 2019) to G's loss, see below.
    ``augment``: a DiffAugment policy (gan_tf.augment) applied to every image D sees.
    ``r1_weight`` > 0 adds the R1 penalty (Mescheder et al. 2018) to D's loss: gamma / 2 times
    the squared gradient of D's logit at the real images, which keeps D flat where the data is.
    A D with a second output (``models.make_discriminator(categories=k)``) guesses the code the
    generator read off each fake's noise; both networks then also minimise InfoGAN's code loss.
    """
    z = rng.normal([tf.shape(real_images)[0], latent_dim_of(generator)])
    half = tf.shape(real_images)[0] // 2
    fake_labels = labels
    coded, info = len(discriminator.outputs) == 2, 0.0  # InfoGAN's code head
    if mode_seeking and labels is not None:
        # The second half of the fakes repeats the first half's classes, so that the
        # mode-seeking term can compare two fakes of one class.
        fake_labels = tf.concat([labels[:half], labels[: tf.shape(labels)[0] - half]], 0)
    # Two tapes over one forward pass: the fakes feed both losses, as in the classic recipe.
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        fake_images = generator(z if labels is None else [z, fake_labels], training=True)
        real_seen = diff_augment(real_images, rng, augment)
        fake_seen = diff_augment(fake_images, rng, augment)
        with tf.GradientTape(watch_accessed_variables=False) as r1_tape:  # d logit / d real image
            r1_tape.watch(real_seen)
            real_logits = discriminator(real_seen if labels is None else [real_seen, labels], training=True)
            if coded:
                real_logits = real_logits[0]
            summed = tf.reduce_sum(tf.cast(real_logits, tf.float32))  # each image's slope, in one gradient
        fake_logits = discriminator(fake_seen if labels is None else [fake_seen, fake_labels], training=True)
        if coded:
            fake_logits, code_logits = fake_logits
            info = code_loss(code_of(z, code_logits.shape[-1]), code_logits)
        d_loss = discriminator_loss(real_logits, fake_logits)
        d_total = d_loss + info
        if r1_weight:
            slopes = r1_tape.gradient(summed, real_seen)
            d_total += r1_weight / 2 * tf.reduce_mean(tf.reduce_sum(tf.square(tf.cast(slopes, tf.float32)),
                                                                     axis=[1, 2, 3]))
        g_loss = GENERATOR_LOSSES[generator_loss](fake_logits)
        g_total = g_loss + info
        if mode_seeking:  # fakes i and half + i share a class and differ in their noise only
            g_total += mode_seeking * mode_seeking_loss(fake_images[:half], fake_images[half:2 * half],
                                                        z[:half], z[half:2 * half])
        share = replica_share()  # 1 on one device; see gan_tf.distribute
        scaled_d, scaled_g = d_optimizer.scale_loss(d_total * share), g_optimizer.scale_loss(g_total * share)
    g_grads = g_tape.gradient(scaled_g, generator.trainable_variables)
    d_grads = d_tape.gradient(scaled_d, discriminator.trainable_variables)
    g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
    d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
    return {"d_loss": d_loss, "g_loss": g_loss, **({"code_loss": info} if coded else {})}


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
                    gp_weight=10.0, clip_value=None, augment=""):
    """n_critic critic updates, then one generator update (notebooks/03_wgan_gp.ipynb).

    ``real_images`` holds n_critic batches stacked, one per critic update. WGAN-GP: gp_weight
    10 and no clipping; the original WGAN: gp_weight 0 and clip_value 0.01. Losses go
    through ``optimizer.scale_loss``, a no-op unless the optimizer scales losses for mixed
    precision. Returns the critic's and generator's losses, the Wasserstein estimate
    E[f(real)] - E[f(fake)] and the gradient penalty, all from the last critic update.
    ``augment``: a DiffAugment policy (gan_tf.augment) applied to every image the critic sees;
    the penalty is then taken between augmented reals and fakes, the images the critic judges.
    """
    batch_size = tf.shape(real_images)[0] // n_critic
    latent_dim = latent_dim_of(generator)
    penalty = tf.constant(0.0)
    for real in tf.split(real_images, n_critic):
        fake = generator(rng.normal([batch_size, latent_dim]), training=True)
        real, fake = diff_augment(real, rng, augment), diff_augment(fake, rng, augment)
        with tf.GradientTape() as tape:
            c_loss = critic_loss(critic(real, training=True), critic(fake, training=True))
            if gp_weight:
                # Uniform, as in the paper; shaped (B, 1, 1, 1) for images, (B, 1) for points.
                alpha = rng.uniform([batch_size] + [1] * (real.shape.rank - 1))
                penalty = gradient_penalty(critic, real, fake, alpha)
            total = c_loss + gp_weight * penalty
            scaled = c_optimizer.scale_loss(total * replica_share())
        grads = tape.gradient(scaled, critic.trainable_variables)
        c_optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        if clip_value:  # the original WGAN's crude way to keep the critic Lipschitz
            for weight in critic.trainable_variables:
                weight.assign(tf.clip_by_value(weight, -clip_value, clip_value))
    with tf.GradientTape() as tape:
        fake = generator(rng.normal([batch_size, latent_dim]), training=True)
        g_loss = generator_loss_wasserstein(critic(diff_augment(fake, rng, augment), training=True))
        scaled = g_optimizer.scale_loss(g_loss * replica_share())
    grads = tape.gradient(scaled, generator.trainable_variables)
    g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    return {"d_loss": total, "g_loss": g_loss, "wasserstein": -c_loss, "gradient_penalty": penalty}


class ImagePool(tf.Module):
    """The last ``size`` fakes of one generator (Shrivastava et al. 2017, used by CycleGAN).

    The discriminator is shown a mix of new fakes and older ones, so it keeps rejecting what the
    generator drew a while ago and the two do not chase each other in circles. While the pool
    fills, every fake is stored and shown; once full, each fake is, with probability 1/2, swapped
    for a random stored one (which is shown instead), else shown as it is. Its variables are
    part of the checkpoint, so a resumed run sees the same pool.
    """

    def __init__(self, size, image_shape=(28, 28, 1), name=None):
        super().__init__(name=name)
        self.size = size
        self.images = tf.Variable(tf.zeros([max(size, 1), *image_shape]), trainable=False, name="images")
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="count")

    def query(self, fakes, rng):
        """The batch to show the discriminator in place of ``fakes`` (at most ``size`` images).

        Written with fixed shapes only (no boolean masks), so that XLA can compile it on a GPU.
        """
        if not self.size:
            return fakes
        fakes = tf.cast(fakes, self.images.dtype)
        n, count = tf.shape(fakes)[0], self.count.value()
        new_slot = count + tf.range(n)  # where fake i goes while the pool fills
        filling = new_slot < self.size
        swap = tf.logical_and(tf.logical_not(filling), rng.uniform([n]) < 0.5)
        # The filled slots in random order; the fakes that arrive once the pool is full (from
        # number size - count on) take distinct ones of them.
        order = tf.argsort(rng.uniform([self.size]) + tf.cast(tf.range(self.size) >= count, tf.float32))
        slot = tf.where(filling, new_slot, tf.gather(order, tf.maximum(tf.range(n) - (self.size - count), 0)))
        shown = tf.where(swap[:, None, None, None], tf.gather(self.images, slot), fakes)
        # Store the fakes that fill or swap: a one-hot map from fakes to (distinct) slots.
        writes = tf.one_hot(slot, self.size) * tf.cast(tf.logical_or(filling, swap), tf.float32)[:, None]
        kept = 1.0 - tf.reduce_sum(writes, 0)
        self.images.assign(self.images * kept[:, None, None, None] + tf.tensordot(writes, fakes, [[0], [0]]))
        self.count.assign(tf.minimum(count + n, self.size))
        return shown


@tf.function
def cyclegan_train_step(generators, discriminators, g_optimizers, d_optimizers, real_a, real_b, pools,
                        rng, cycle_weight=10.0, identity_weight=5.0):
    """Update both generators, then both discriminators, once (notebooks/06_cyclegan.ipynb).

    ``generators`` = (G_AB, G_BA), ``discriminators`` = (D_A, D_B), each network with its own
    optimizer in the same order; ``pools`` = (pool of fake A, pool of fake B). Returns the
    discriminators' and generators' adversarial losses (sums over both directions), the cycle
    loss |G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b| and the identity loss
    |G_AB(b) - b| + |G_BA(a) - a|, each before weighting.
    """
    g_ab, g_ba = generators
    d_a, d_b = discriminators
    g_variables = [g.trainable_variables for g in generators]
    with tf.GradientTape(persistent=True) as tape:
        fake_b, fake_a = g_ab(real_a, training=True), g_ba(real_b, training=True)
        adversarial = (least_squares_generator_loss(d_b(fake_b, training=True))
                       + least_squares_generator_loss(d_a(fake_a, training=True)))
        # Translating there and back must give the input back: the only thing that ties an
        # output to its input, since no pair (a, b) is ever seen.
        cycle = (l1_distance(g_ba(fake_b, training=True), real_a)
                 + l1_distance(g_ab(fake_a, training=True), real_b))
        # An image already in the target domain should pass unchanged.
        identity = (l1_distance(g_ab(real_b, training=True), real_b)
                    + l1_distance(g_ba(real_a, training=True), real_a)) if identity_weight else 0.0
        total = adversarial + cycle_weight * cycle + identity_weight * identity
        scaled = [opt.scale_loss(total) for opt in g_optimizers]
    for optimizer, loss, variables in zip(g_optimizers, scaled, g_variables):
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    del tape
    shown_a, shown_b = pools[0].query(fake_a, rng), pools[1].query(fake_b, rng)
    with tf.GradientTape(persistent=True) as tape:
        d_a_loss = least_squares_discriminator_loss(d_a(real_a, training=True), d_a(shown_a, training=True))
        d_b_loss = least_squares_discriminator_loss(d_b(real_b, training=True), d_b(shown_b, training=True))
        scaled = [opt.scale_loss(loss) for opt, loss in zip(d_optimizers, (d_a_loss, d_b_loss))]
    for optimizer, loss, net in zip(d_optimizers, scaled, discriminators):
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
    return {"d_loss": d_a_loss + d_b_loss, "g_loss": adversarial, "cycle": cycle,
            "identity": tf.convert_to_tensor(identity, tf.float32)}


def make_step(config, strategy=None):
    """The training step for ``config.model``, as ``step(state, batch) -> losses``.

    ``state`` is what ``gan_tf.checkpoints.build`` returns. The GAN (or WGAN) step and, when
    the run keeps one, the moving-average update are compiled together into one graph with
    the networks captured, not passed: one launch per step instead of two (about 5 % of a step
    here, benchmarks/step_speed.py). Under a tf.distribute ``strategy`` the step runs on every
    replica (``batch`` is then a distributed batch, gan_tf.distribute) and the moving average
    is updated once, after the replicas' losses are averaged.
    """
    if config.model in TRANSLATION:
        return _compiled(config, _cyclegan_step(config))
    if config.model in WASSERSTEIN:
        step = wgan_train_step
        options = dict(n_critic=config.n_critic,
                       gp_weight=config.gp_weight if config.model == "wgan_gp" else 0.0,
                       clip_value=config.clip_value if config.model == "wgan" else None,
                       augment=config.augment)
    else:
        step, options = gan_train_step, dict(generator_loss=config.generator_loss,
                                             mode_seeking=config.mode_seeking, augment=config.augment,
                                             r1_weight=config.r1_weight)
    decay = tf.constant(config.ema_decay, tf.float32)

    def gan_step(state, batch, rng):
        # A cgan's batches are (images, labels) pairs; the others' are images alone.
        images, extra = (batch[0], dict(labels=batch[1])) if config.model in CONDITIONAL else (batch, {})
        return step.python_function(state.generator, state.discriminator, state.g_optimizer,
                                    state.d_optimizer, images, rng, **options, **extra)

    def moving_average(state):
        if config.ema_decay:
            update_moving_average.python_function(state.ema_generator, state.generator,
                                                  decay, state.g_optimizer.iterations)

    if strategy is not None:
        return _replicated(config, strategy, gan_step, moving_average)

    def one_step(state, batch):
        losses = gan_step(state, batch, state.rng)
        moving_average(state)
        return losses

    return _compiled(config, one_step)


def _replicated(config, strategy, gan_step, moving_average):
    """``gan_step`` on every replica of ``strategy``, its losses averaged across them, then the
    moving average (in cross-replica context, where an assignment updates every copy)."""
    compiled = {}
    mean = tf.distribute.ReduceOp.MEAN

    def run(state, batch):
        if compiled.get("for") is not state:
            # Without XLA, as Keras does under tf.distribute (config.validate refuses --xla here;
            # a TPU compiles the step with XLA by itself).
            def on_replica(batch, seed):
                return gan_step(state, batch, ReplicaNoise(seed))

            @tf.function
            def replicated(batch):
                seed = state.rng.make_seeds(1)[:, 0]  # one seed for all replicas' noise
                losses = strategy.run(on_replica, args=(batch, seed))
                losses = {key: strategy.reduce(mean, value, axis=None) for key, value in losses.items()}
                moving_average(state)
                return losses

            compiled.update({"for": state, "step": replicated})
        with strategy.scope():
            return compiled["step"](batch)

    return run


def _cyclegan_step(config):
    def one_step(state, batch):
        real_a, real_b = batch
        return cyclegan_train_step.python_function(
            (state.generator, state.generator_ba), (state.discriminator_a, state.discriminator),
            (state.g_optimizer, state.g_ba_optimizer), (state.d_a_optimizer, state.d_optimizer),
            real_a, real_b, (state.pool_a, state.pool_b), state.rng,
            cycle_weight=config.cycle_weight, identity_weight=config.identity_weight)
    return one_step


def _compiled(config, one_step):
    """``one_step`` as ``run(state, batch)``, traced into one graph per set of networks."""
    compiled = {}

    def run(state, batch):
        if compiled.get("for") is not state:  # one graph per set of networks
            # XLA (jit_compile): the same Python function, compiled as one fused program.
            jit_compile = hardware.jit_compile_for(config.jit_compile)
            compiled.update({"for": state, "step": tf.function(lambda batch: one_step(state, batch),
                                                               jit_compile=jit_compile)})
        return compiled["step"](batch)

    return run
