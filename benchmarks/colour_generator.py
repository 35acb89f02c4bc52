"""How the colour generator upsamples: the DCGAN paper's stride-2 transposed convolutions against
gan_tf's resize-convolutions (repeat each pixel, then a 3x3 convolution; Odena et al. 2016).

    python benchmarks/colour_generator.py --out runs/bench/colour_generator [--images 500] [--steps 1400]

Each variant trains the same DCGAN step (gan_tf.steps.gan_train_step, Adam 2e-4, beta_1 0.5,
batch 64) from the same seed on the first --images emoji (data.example_folder, 32x32) for --steps
steps, then scores 2,000 samples of the raw generator with gan_tf.folder_metrics against the
folder (KID, coverage; --reference N: against its first N pictures) and writes a grid of 64
samples to OUT/<variant>.png. One line per variant.
Variants: transposed or resize upsampling, the discriminator's dropout 0.3 (gan_tf's) or 0.
"""

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import gan_tf  # noqa: F401 - before TensorFlow
from gan_tf import data, folder_metrics, models, plots, steps

VARIANTS = [("transposed", 0.3), ("resize", 0.3), ("transposed", 0.0), ("resize", 0.0)]


def make_step(g, d, g_opt, d_opt, rng):
    """One compiled DCGAN step for this pair of networks."""
    return tf.function(lambda x: steps.gan_train_step.python_function(g, d, g_opt, d_opt, x, rng))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--reference", type=int, default=None,
                        help="score against the first N emoji (default: all; a smoke test uses fewer)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = data.example_folder("emoji")
    everything = data.load_folder(folder, 32)
    batches = data.make_dataset(everything[: args.images], batch_size=64, seed=1)
    evaluator = folder_metrics.FolderEvaluator(images=everything[: args.reference])
    for upsampling, dropout in VARIANTS:
        keras.utils.set_random_seed(0)
        g = models.make_generator(image_shape=(32, 32, 3), upsampling=upsampling)
        d = models.make_discriminator(image_shape=(32, 32, 3), dropout=dropout)
        g_opt, d_opt = steps.make_optimizer(g, 2e-4, 0.5), steps.make_optimizer(d, 2e-4, 0.5)
        rng = tf.random.Generator.from_seed(0)
        step = make_step(g, d, g_opt, d_opt, rng)
        start, done = time.perf_counter(), 0
        while done < args.steps:
            for batch in batches.take(args.steps - done):
                losses = step(batch)
                done += 1
        seconds = time.perf_counter() - start
        samples = np.concatenate([g(tf.random.normal((500, 100), seed=i), training=False).numpy()
                                  for i in range(4)])
        scores = evaluator.evaluate(samples)
        name = f"{upsampling}_dropout{dropout}"
        plots.save_grid(samples[:64], args.out / f"{name}.png", cols=8)
        print(f"{name:22s} steps {done}  d_loss {float(losses['d_loss']):.3f}  "
              f"g_loss {float(losses['g_loss']):.3f}  KID {scores['kid']:.3f}  "
              f"coverage {scores['coverage']:.2f}  {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
