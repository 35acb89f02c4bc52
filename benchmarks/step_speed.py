"""Step speed: gan_tf's DCGAN training step against the tutorial's, side by side in one run.

    python benchmarks/step_speed.py [--reps 7] [--steps 20] [--concat] [--json FILE]
    python benchmarks/step_speed.py --only gan_tf --reps 31 --steps 5   # goal 2 alone, longer

Every step runs the tutorial's architecture on the same batch of real MNIST images held in
memory, so only the step is timed. The tutorial's step is timed twice:
- `tutorial`: in a process of its own that imports TensorFlow as the tutorial's script does,
  with the start-up settings TensorFlow chooses (and any the user has set). That is the step a
  learner of the tutorial waits for.
- `tutorial_here`: in this process, which imported gan_tf first and so runs TensorFlow with
  gan_tf's settings (oneDNN's CPU kernels on x86; see gan_tf/__init__.py). Ratios against it
  compare the code alone.
Beside them, in this process: gan_tf's default recipe at the tutorial's batch of 256 (it also
updates the moving average of G's weights), and the tutorial's recipe in gan_tf's code (the same
arithmetic as the reference). All steps alternate: for each repetition, --steps steps of each
in turn (order reversed every repetition), after warm-up; the separate process waits while the
others run, so they never share the CPU.
Prints images/second of each (median over repetitions), the median of the per-repetition
speed ratios with a distribution-free 95 % interval for that median (so a ratio of 1.02 on a
noisy machine is not mistaken for a win), and each step's share of this CPU's peak float32 rate.
gan_tf's default recipe (batch 64) is timed in the same rotation: benchmarks/compare_curves.py
uses its seconds per step, and the tutorial's, to put both time-to-quality curves on one clock.
The same step with XLA switched the other way is timed too, to show what XLA buys. gan_tf's
recipes run with the speed-ups `train` chooses on this machine (gan_tf.hardware.resolve): where
that includes bfloat16 compute, the default step is also timed in float32 (gan_tf_default_float32)
to show what bfloat16 buys; the tutorial's recipe in gan_tf's code stays float32.

FLOPs are counted, not sampled: multiply-adds of the convolution and dense layers (2 FLOPs
each; elementwise ops, BatchNorm and the optimizers are left out, a few percent), for the
passes a step runs: G forward (B), D forward (2B real+fake), the weight gradients and the
input gradients each costing one more forward pass's worth of the layer, with only the
gradients each tape needs (see step_flops).
"""

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The environment this script was started with, before importing gan_tf adds its settings:
# the tutorial's process gets exactly this one.
LAUNCH_ENV = dict(os.environ)


def layer_flops(layer):
    """Forward FLOPs per image of one Conv2D / Conv2DTranspose / Dense layer (0 for others)."""
    from keras import layers

    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    weights = 1
    for size in kernel.shape:
        weights *= int(size)
    if isinstance(layer, layers.Dense):
        return 2 * weights
    if isinstance(layer, layers.Conv2DTranspose):  # each input pixel scatters a k x k x out patch
        h, w = layer.input.shape[1:3]
    elif isinstance(layer, layers.Conv2D):  # each output pixel gathers a k x k x in patch
        h, w = layer.output.shape[1:3]
    else:
        return 0
    return 2 * weights * int(h) * int(w)


def step_flops(generator, discriminator, batch_size):
    """FLOPs of one classic two-tape GAN step (see the module docstring)."""
    g = [layer_flops(layer) for layer in generator.layers]
    d = [layer_flops(layer) for layer in discriminator.layers]
    g_layers, d_layers = [f for f in g if f], [f for f in d if f]
    forward = batch_size * (sum(g) + 2 * sum(d))
    # d_tape: weight gradients on real+fake; input gradients except into the first layer.
    d_backward = 2 * batch_size * (sum(d_layers) + sum(d_layers[1:]))
    # g_tape: input gradients through D on the fakes (all layers, down to the image), then
    # G's weight gradients and its input gradients except into the latent vector.
    g_backward = batch_size * (sum(d_layers) + sum(g_layers) + sum(g_layers[1:]))
    return forward + d_backward + g_backward


def matmul_rate(n=2048, reps=10):
    """Measured float32 FLOP/s of a large matrix product: what this CPU delivers in practice."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    (a @ b).numpy()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        (a @ b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times)


def nominal_peak():
    """cores x GHz x FLOPs/cycle from lscpu, or None. AVX-512 cores with two FMA pipes do
    2 pipes x 16 float32 lanes x 2 FLOPs = 64 FLOPs per cycle (AMD Zen 4 runs 512-bit ops in
    two halves: 32; Zen 5, CPU family 26, has full-width pipes: 64)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None, "no /proc/cpuinfo"
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    family = next((line.split(":")[1].strip() for line in info.splitlines()
                   if line.startswith("cpu family")), "?")
    bogomips = next((float(line.split(":")[1]) for line in info.splitlines()
                     if line.lower().startswith("bogomips")), None)
    if bogomips is None:
        return None, "no clock rate found"
    ghz = bogomips / 2 / 1000  # BogoMIPS is twice the nominal clock on x86
    per_cycle = 64 if "avx512f" in flags and family == "26" else (
        32 if "avx512f" in flags or "avx2" in flags else 16)
    cores = os.cpu_count()
    return cores * ghz * 1e9 * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FLOPs/cycle"


def concat_variant(state, real_images):
    """gan_tf's step with the discriminator called once on the real and fake batches stacked."""
    import tensorflow as tf

    from gan_tf.losses import discriminator_loss, generator_loss_non_saturating
    from gan_tf.steps import update_moving_average

    n = tf.shape(real_images)[0]
    z = state.rng.normal([n, 100])
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        fake_images = state.generator(z, training=True)
        logits = state.discriminator(tf.concat([real_images, fake_images], 0), training=True)
        real_logits, fake_logits = logits[:n], logits[n:]
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = generator_loss_non_saturating(fake_logits)
    g_vars, d_vars = state.generator.trainable_variables, state.discriminator.trainable_variables
    state.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
    state.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
    if hasattr(state, "ema_generator"):  # the same bookkeeping as gan_tf's default step
        update_moving_average.python_function(  # inlined: this variant is one tf.function
            state.ema_generator, state.generator, 0.999, state.g_optimizer.iterations)
    return {"d_loss": d_loss, "g_loss": g_loss}


def tutorial_worker(batch_file):
    """`--tutorial-worker`: the tutorial's step in this fresh process, timed on request.

    Reads a number of steps per line from stdin and answers with their seconds; its first line
    says whether TensorFlow runs with oneDNN here.
    """
    import numpy as np
    import tensorflow as tf  # first, as the tutorial's script imports it: TensorFlow's own settings
    import tutorial_reference as ref

    from gan_tf import hardware  # only to ask: TensorFlow has read its settings already

    batch = tf.constant(np.load(batch_file))
    reference = ref.Reference()
    print(json.dumps({"onednn": hardware.onednn_enabled()}), flush=True)
    for line in sys.stdin:
        t0 = time.perf_counter()
        for _ in range(int(line)):
            out = reference.step(batch)
        float(out["d_loss"])  # wait for the last step
        print(time.perf_counter() - t0, flush=True)


class TutorialProcess:
    """The tutorial's step running in a child process (see tutorial_worker)."""

    def __init__(self, batch):
        import numpy as np

        with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
            np.save(f, batch)
        self.batch_file = f.name
        env = {"TF_CPP_MIN_LOG_LEVEL": "2", **LAUNCH_ENV}  # quiet logs: they do not change speed
        self.child = subprocess.Popen([sys.executable, __file__, "--tutorial-worker", self.batch_file],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        try:
            self.onednn = json.loads(self._answer())["onednn"]
        except RuntimeError:
            os.unlink(self.batch_file)
            raise

    def _answer(self):
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"the tutorial's process ended (exit code {self.child.wait()}); "
                               "its error is printed above")
        return line

    def seconds(self, steps):
        self.child.stdin.write(f"{steps}\n")
        self.child.stdin.flush()
        return float(self._answer())

    def close(self):
        self.child.stdin.close()
        self.child.wait(timeout=60)
        os.unlink(self.batch_file)


def median_interval(values, confidence=0.95):
    """A distribution-free confidence interval for the median of `values`.

    The median lies below the k-th smallest of n values with probability P(Binomial(n, 1/2) < k),
    so the k-th smallest and k-th largest bound it; k is the largest with both tails <= alpha/2.
    Returns (low, high), or None when there are too few values (n < 6 for 95 %).
    """
    ordered, n = sorted(values), len(values)
    tail = (1 - confidence) / 2
    k = 0
    while sum(math.comb(n, i) for i in range(k + 1)) / 2**n <= tail:
        k += 1
    return None if k == 0 else (ordered[k - 1], ordered[n - k])


def verdict(interval):
    if interval is None:
        return "too few repetitions for a 95 % interval"
    low, high = interval
    if low >= 1.0:
        return "faster than the tutorial (whole interval >= 1)"
    if high < 1.0:
        return "slower than the tutorial (whole interval < 1)"
    return "no difference resolved (interval contains 1)"


STEP_NAMES = ("gan_tf", "gan_tf_default", "gan_tf_tutorial_recipe", "gan_tf_default_no_xla",
              "gan_tf_default_xla", "gan_tf_default_float32", "gan_tf_concat")


def check_only(parser, chosen, args):
    """Refuse --only names that no machine times, and --json without the default step."""
    if chosen is None:
        return
    allowed = set(STEP_NAMES) if args.concat else set(STEP_NAMES) - {"gan_tf_concat"}
    unknown = sorted(set(chosen) - allowed)
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(STEP_NAMES)} (gan_tf_concat needs --concat)")
    if args.json and "gan_tf_default" not in chosen:
        parser.error("--json feeds compare_curves.py, which needs gan_tf_default's step: "
                     "add it to --only or drop --json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="alternating repetitions")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--concat", action="store_true",
                        help="also time a variant with one discriminator pass on real+fake")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the measured seconds per step to this JSON file "
                             "(benchmarks/compare_curves.py reads it)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="TrainConfig overrides for gan_tf's step (e.g. jit_compile=true)")
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="comma-separated steps to time beside the tutorial's (gan_tf, "
                             "gan_tf_default, gan_tf_tutorial_recipe, gan_tf_default_no_xla or "
                             "gan_tf_default_xla, gan_tf_default_float32 where bfloat16 is chosen, "
                             "gan_tf_concat); default: all")
    parser.add_argument("--tutorial-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tutorial_worker:
        return tutorial_worker(args.tutorial_worker)
    chosen = None if args.only is None else [name.strip() for name in args.only.split(",")]
    check_only(parser, chosen, args)  # before TensorFlow loads: a typo costs a second

    # isort: off
    import gan_tf  # noqa: F401 - before TensorFlow, as in a learner's script: gan_tf's settings
    # isort: on
    import numpy as np
    import tensorflow as tf
    import tutorial_reference as ref
    from time_to_quality import cpu_name, parse_overrides
    overrides = parse_overrides(args.set)

    from gan_tf import data, hardware
    from gan_tf.config import TUTORIAL_RECIPE, TrainConfig
    from gan_tf.train import build, make_step

    images, _ = data.load("mnist", "train")
    batch_array = images[: ref.BATCH_SIZE].astype(np.float32) / 127.5 - 1
    batch = tf.constant(batch_array)

    # gan_tf's recipe with the speed-ups `train` chooses on this machine (gan_tf.hardware.resolve).
    config = hardware.resolve(TrainConfig(model="dcgan", batch_size=ref.BATCH_SIZE, **overrides).validate())
    # gan_tf's default recipe trains on smaller batches: its own step, timed alongside, converts
    # the steps of its time-to-quality curve into time on this machine.
    default_config = hardware.resolve(TrainConfig(model="dcgan", **overrides).validate())
    default_xla = default_config.jit_compile
    small_batch = batch[: default_config.batch_size]
    # The tutorial's own recipe run by gan_tf's code (no moving average): the same arithmetic as
    # the reference step, so their ratio compares the implementations alone.
    same_config = TrainConfig(model="dcgan", **{**TUTORIAL_RECIPE, **overrides}).validate()

    def gan_tf_runner(cfg, images_batch):
        step_state, step = build(cfg), make_step(cfg)
        return lambda: step(step_state, images_batch)

    def concat_runner():  # lever: one D call on real and fake stacked (same maths: no BatchNorm in D)
        concat_state, concat_step = build(config), tf.function(concat_variant)
        return lambda: concat_step(concat_state, batch)

    # name -> (batch size, how to build its runner); built only if timed
    candidates = {
        "gan_tf": (ref.BATCH_SIZE, lambda: gan_tf_runner(config, batch)),
        "gan_tf_default": (default_config.batch_size, lambda: gan_tf_runner(default_config, small_batch)),
        "gan_tf_tutorial_recipe": (ref.BATCH_SIZE, lambda: gan_tf_runner(same_config, batch)),
    }
    # What XLA is worth, measured in the same rotation: the default step with XLA the other way.
    other_xla = "gan_tf_default_no_xla" if default_xla else "gan_tf_default_xla"
    other_config = dataclasses.replace(default_config, jit_compile=not default_xla)
    candidates[other_xla] = (default_config.batch_size, lambda: gan_tf_runner(other_config, small_batch))
    if default_config.bfloat16:  # and what bfloat16 compute is worth, where the machine chose it
        float32_config = dataclasses.replace(default_config, bfloat16=False)
        candidates["gan_tf_default_float32"] = (default_config.batch_size,
                                                lambda: gan_tf_runner(float32_config, small_batch))
    if args.concat:
        candidates["gan_tf_concat"] = (ref.BATCH_SIZE, concat_runner)
    if chosen is None:
        chosen = list(candidates)
    unknown = sorted(set(chosen) - set(candidates))
    if unknown:  # the XLA twin this machine does not time
        parser.error(f"--only: step(s) {', '.join(unknown)} not timed on this machine; choose from "
                     f"{', '.join(candidates)}")
    tutorials = ("tutorial", "tutorial_here")
    batch_sizes = dict.fromkeys(tutorials, ref.BATCH_SIZE) | {name: candidates[name][0] for name in chosen}
    reference = ref.Reference()
    runners = {"tutorial_here": lambda: reference.step(batch)}
    runners.update({name: candidates[name][1]() for name in chosen})
    networks = build(config)  # every gan_tf step here uses this architecture; FLOPs scale with batch

    def block(name, steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            out = runners[name]()
        float(out["d_loss"])  # wait for the last step
        return time.perf_counter() - t0

    tutorial = TutorialProcess(batch_array)
    try:
        timers = {"tutorial": tutorial.seconds} | {name: (lambda steps, name=name: block(name, steps))
                                                   for name in runners}
        warm_up = {name: timer(3) for name, timer in timers.items()}  # tracing, XLA compiling + 3 steps
        seconds = {name: [] for name in timers}
        for rep in range(args.reps):
            order = list(timers) if rep % 2 == 0 else list(timers)[::-1]
            for name in order:
                seconds[name].append(timers[name](args.steps))
    finally:
        tutorial.close()

    flops = {name: step_flops(reference.generator, reference.discriminator, ref.BATCH_SIZE)
             for name in tutorials}
    for name in chosen:
        flops[name] = step_flops(networks.generator, networks.discriminator, batch_sizes[name])
    measured_peak = matmul_rate()
    peak, how = nominal_peak()
    on_off = {True: "on", False: "off"}
    print("settings: steps timed " + ", ".join(f"{name} (batch {size})" for name, size in batch_sizes.items())
          + f"; {args.reps} alternating repetitions of {args.steps} "
          f"steps, gan_tf config overrides {overrides or 'none'}")
    user_setting = LAUNCH_ENV.get("TF_ENABLE_ONEDNN_OPTS")
    print(f"oneDNN CPU kernels: tutorial's own process {on_off[tutorial.onednn]} (TensorFlow's start-up "
          f"settings{'' if user_setting is None else ', TF_ENABLE_ONEDNN_OPTS=' + user_setting}); "
          f"this process (gan_tf imported first) {on_off[hardware.onednn_enabled()]}; "
          f"XLA in gan_tf's default step {on_off[default_xla]}")
    machine = cpu_name()
    print(f"machine: {machine}")
    if peak is None:  # unknown clock: report shares of the measured matmul rate only
        peak = float("nan")
    print(f"peak float32: nominal {peak / 1e9:.0f} GFLOP/s ({how}); measured 2048x2048 "
          f"matmul {measured_peak / 1e9:.0f} GFLOP/s")
    step_seconds_of = {name: statistics.median(seconds[name]) / args.steps for name in timers}
    print("first 3 steps incl. tracing/compiling: "
          + ", ".join(f"{name} {t:.1f} s" for name, t in warm_up.items()))
    images_per_s = {name: batch_sizes[name] / step_seconds_of[name] for name in timers}
    for name in timers:
        step_seconds = step_seconds_of[name]
        rate = flops[name] / step_seconds
        print(f"{name:14s} batch {batch_sizes[name]:3d}: {images_per_s[name]:7.0f} images/s  "
              f"{step_seconds * 1000:6.1f} ms/step  {flops[name] / 1e9:6.2f} GFLOP/step  "
              f"{rate / 1e9:6.1f} GFLOP/s = {rate / peak:5.1%} of nominal peak, "
              f"{rate / measured_peak:5.1%} of matmul rate")
    if "gan_tf_default" in timers and other_xla in timers:
        with_xla, without = ("gan_tf_default", other_xla) if default_xla else (other_xla, "gan_tf_default")
        xla_gain = [b / a for a, b in zip(seconds[with_xla], seconds[without])]
        print("speed ratios gan_tf_default XLA/no XLA per repetition: "
              + " ".join(f"{r:.3f}" for r in xla_gain) + f"  median {statistics.median(xla_gain):.3f}")
    if "gan_tf_default" in timers and "gan_tf_default_float32" in timers:
        bf16_gain = [b / a for a, b in zip(seconds["gan_tf_default"], seconds["gan_tf_default_float32"])]
        print("speed ratios gan_tf_default bfloat16/float32 per repetition: "
              + " ".join(f"{r:.3f}" for r in bf16_gain) + f"  median {statistics.median(bf16_gain):.3f}")
    same_work = [name for name in timers if batch_sizes[name] == ref.BATCH_SIZE and name != "tutorial"]
    intervals, medians = {}, {}
    for base in tutorials:
        for name in same_work:
            if name == base:
                continue
            per_rep = [a / b for a, b in zip(seconds[base], seconds[name])]
            key = f"{name}/{base}"
            intervals[key], medians[key] = median_interval(per_rep), statistics.median(per_rep)
            bounds = "" if intervals[key] is None else (
                f", 95 % interval [{intervals[key][0]:.3f}, {intervals[key][1]:.3f}]")
            print(f"speed ratios {key} per repetition: " + " ".join(f"{r:.3f}" for r in per_rep)
                  + f"  median {medians[key]:.3f}{bounds}, "
                  f"{sum(r >= 1.0 for r in per_rep)} of {len(per_rep)} >= 1: {verdict(intervals[key])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "cpu": machine, "reps": args.reps, "steps": args.steps,
            "seconds_per_step": step_seconds_of, "batch_size": batch_sizes}, indent=2) + "\n")
    summary = [f"images/s tutorial {images_per_s['tutorial']:.0f} (own process), "
               f"{images_per_s['tutorial_here']:.0f} (here)"]
    for key in medians:
        if key.startswith("gan_tf/"):
            summary.append(f"{key} = {medians[key]:.3f} ({verdict(intervals[key])})")
    if "gan_tf" in images_per_s:
        summary.append(f"gan_tf {images_per_s['gan_tf']:.0f} images/s")
    print(f"SUMMARY step speed, batch {ref.BATCH_SIZE}, median of {args.reps}: " + "; ".join(summary))


if __name__ == "__main__":
    main()
