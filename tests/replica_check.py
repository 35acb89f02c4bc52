"""Train the same few steps on 1 and on 2 replicas of a MirroredStrategy and print how far apart
they end (JSON). Run by tests/test_distribute.py in a process of its own, because the CPU must be
split into two logical devices before TensorFlow starts.

    python tests/replica_check.py MODEL STEPS [--dropout] [--sgd]

Both runs use the same global batch, the same batches in the same order and the same noise
(gan_tf.distribute.ReplicaNoise); what differs is that each replica computes its half of the batch
and the gradients are summed across replicas. Without ``--dropout`` the discriminator's dropout
rate is set to 0 before the step is traced, because Keras draws dropout masks per replica.
``--sgd`` trains with plain gradient descent instead of Adam: Adam divides each gradient by its
own running size, which hides a wrongly scaled gradient and magnifies rounding in near-zero ones;
with SGD the weights show directly whether the replicas' summed gradients equal one device's.
"""

import json
import sys

import gan_tf  # noqa: F401  (before TensorFlow: oneDNN and quiet logs)
from gan_tf import distribute

distribute.split_cpu(2)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gan_tf.checkpoints import build  # noqa: E402
from gan_tf.config import TrainConfig  # noqa: E402
from gan_tf.steps import make_step  # noqa: E402
from gan_tf.train import epoch_batches, training_data  # noqa: E402


def run(model, steps, devices, dropout, sgd, nudge=0.0):
    config = TrainConfig(model=model, strategy="mirrored", limit=2_000, batch_size=32, seed=3,
                         jit_compile=False, mixed_precision=False).validate()
    strategy = tf.distribute.MirroredStrategy(devices)
    parts = training_data(config)
    tf.keras.utils.set_random_seed(config.seed)
    state = build(config, strategy)
    if not dropout:
        for layer in state.discriminator.layers:
            if isinstance(layer, tf.keras.layers.Dropout):
                layer.rate = 0.0
    for weight in state.generator.trainable_variables + state.discriminator.trainable_variables:
        weight.assign(weight * (1 + nudge))  # a rounding-sized change: how sensitive training is
    if sgd:
        with strategy.scope():
            for name, net in (("g_optimizer", state.generator), ("d_optimizer", state.discriminator)):
                optimizer = tf.keras.optimizers.SGD(learning_rate=1e-3)
                optimizer.build(net.trainable_variables)
                setattr(state, name, optimizer)
    step = make_step(config, strategy)
    nets = [state.generator, state.discriminator] + ([state.ema_generator] if config.ema_decay else [])
    start = [w.numpy() for net in nets for w in net.weights]
    losses = []
    for i, batch in enumerate(epoch_batches(config, parts, 1, strategy)):
        if i == steps:
            break
        losses.append({key: float(value) for key, value in step(state, batch).items()})
    weights = [w.numpy() for net in nets for w in net.weights]
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, start))
    return losses, weights, moved


def main():
    model, steps, dropout, sgd = sys.argv[1], int(sys.argv[2]), "--dropout" in sys.argv, "--sgd" in sys.argv
    one, one_weights, moved = run(model, steps, ["/cpu:0"], dropout, sgd)
    two, two_weights, _ = run(model, steps, ["/cpu:0", "/cpu:1"], dropout, sgd)
    nudged, nudged_weights, _ = run(model, steps, ["/cpu:0"], dropout, sgd, nudge=2.0 ** -23)

    def gaps(a_losses, b_losses, a_weights, b_weights):
        return ([max(abs(a[key] - b[key]) for key in a) for a, b in zip(a_losses, b_losses)],
                max(float(np.max(np.abs(a - b))) for a, b in zip(a_weights, b_weights)))

    loss_gap, weight_gap = gaps(one, two, one_weights, two_weights)
    nudged_loss_gap, nudged_weight_gap = gaps(one, nudged, one_weights, nudged_weights)
    # How far training moved the weights: the scale their difference is judged against.
    # One device with every weight changed by one rounding step (2^-23): the gap that rounding
    # alone opens over the same steps, the scale the replicas' gap is judged against.
    print(json.dumps({"losses_one": one, "losses_two": two, "loss_gap": loss_gap,
                      "weight_gap": weight_gap, "weights_moved": moved,
                      "nudged_loss_gap": nudged_loss_gap, "nudged_weight_gap": nudged_weight_gap}))


if __name__ == "__main__":
    main()
