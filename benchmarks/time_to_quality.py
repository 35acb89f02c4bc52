"""Time to quality: train a DCGAN recipe on full MNIST and record its cFID-over-time curve.

    python benchmarks/time_to_quality.py --recipe tutorial --epochs 30 --out runs/bench/tutorial
    python benchmarks/time_to_quality.py --recipe gan_tf --minutes 15 --eval-every 117 --out runs/bench/gan_tf

Every --eval-every steps the clock stops, 10,000 samples from a fixed latent batch are scored with
gan_tf's offline cFID against the MNIST test split (gan_tf.metrics), and the state is checkpointed.
Only training steps are timed (tracing included, evaluation and saving excluded). The curve goes
to OUT/curve.csv, one row per evaluation: step, epoch, images, train_seconds, cfid, ...,
peak_rss_mib; 64 samples of the last state to OUT/samples.png. Stopped runs resume from their
last evaluation when started again with the same --out. Ends with one summary line.

--recipe tutorial: benchmarks/tutorial_reference.py, TensorFlow's DCGAN tutorial recipe.
--recipe gan_tf:   what `python -m gan_tf train dcgan` does with no options (--set key=value
                   overrides TrainConfig fields, to measure other settings; lr_decay=true lets
                   the rates fall over the second half of --epochs, as `train` does).
"""

import argparse
import csv
import dataclasses
import importlib
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_SAMPLES = 10_000
LATENTS_SEED = 12345  # every evaluation draws from the same latent batch


def cpu_name():
    """lscpu's model name and CPU family: which machine a number came from."""
    try:
        info = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    field = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in info if ":" in line}
    return f"{field.get('model name', '?')} (family {field.get('cpu family', '?')}, {os.cpu_count()} cores)"


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def parse_overrides(pairs):
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


class Recipe:
    """What the runner needs from a recipe: a checkpoint, a step, batches, a sampler."""

    def __init__(self, name, images, overrides, seed, epochs=None):
        import tensorflow as tf

        self.name = name
        if name == "tutorial":
            import tutorial_reference as ref

            tf.random.set_seed(seed)
            self.ref = ref.Reference()
            self.images = images
            self.steps_per_epoch = math.ceil(len(images) / ref.BATCH_SIZE)
            self.batch_size = ref.BATCH_SIZE
            self.settings = {"recipe": "TensorFlow DCGAN tutorial (benchmarks/tutorial_reference.py)",
                             "batch_size": ref.BATCH_SIZE, "learning_rate": ref.LEARNING_RATE,
                             "beta_1": 0.9}
            self.objects = dict(generator=self.ref.generator, discriminator=self.ref.discriminator,
                                g_optimizer=self.ref.g_optimizer, d_optimizer=self.ref.d_optimizer)
        else:
            from gan_tf import data, hardware
            from gan_tf.config import TrainConfig
            from gan_tf.train import build, make_step

            # with the speed-ups `train` chooses on this machine (bfloat16, XLA: gan_tf.hardware)
            self.config = hardware.resolve(TrainConfig(model="dcgan", seed=seed, **overrides).validate())
            self.data = data
            self.checkpoint = build(self.config)
            self.train_step = make_step(self.config)
            self.images = images
            self.batch_size = self.config.batch_size
            self.steps_per_epoch = len(images) // self.batch_size
            self.settings = {"recipe": "gan_tf default dcgan" + (f" with {overrides}" if overrides else ""),
                             **{k: v for k, v in dataclasses.asdict(self.config).items() if v is not None}}
            self.objects = dict(state=self.checkpoint)
        # The run's last step (--epochs), or none (--minutes alone)
        self.last_step = math.inf if epochs is None else round(epochs * self.steps_per_epoch)
        if name != "tutorial" and self.config.lr_decay:
            # The rates fall over the second half of the run, so its end must be known and
            # the same on resume (check_same_settings compares it like any setting).
            if epochs is None:
                raise SystemExit("error: lr_decay=true needs --epochs: the learning rates fall "
                                 "over the run's second half, so the run's length must be known")
            self.settings["decay_steps"] = self.last_step

    def batches(self, epoch, skip):
        if self.name == "tutorial":
            import tutorial_reference as ref

            return iter(ref.dataset(self.images, seed=epoch).skip(skip))
        ds = self.data.make_dataset(self.images, batch_size=self.batch_size,
                                    seed=self.config.seed * 100_003 + epoch + 1)
        return iter(ds.skip(skip))

    def step(self, batch, number):
        """Train on one batch as step ``number`` (1, 2, ...) of the run."""
        if self.name == "tutorial":
            return self.ref.step(batch)
        if self.config.lr_decay:  # as `train` does: each rate from the step's place in the run
            from gan_tf.train import set_learning_rates

            set_learning_rates(self.config, self.checkpoint, number, self.settings["decay_steps"])
        return self.train_step(self.checkpoint, batch)

    def learning_rate(self):
        """G's learning rate now: the curve shows where a decaying rate stood."""
        optimizer = self.ref.g_optimizer if self.name == "tutorial" else self.checkpoint.g_optimizer
        return float(f"{float(optimizer.learning_rate.numpy()):.6g}")  # float32 digits, not float64 noise

    def raw_generator(self):
        return self.ref.generator if self.name == "tutorial" else self.checkpoint.generator

    def sampler(self):
        from gan_tf.train import sampling_generator

        if self.name == "tutorial":
            return self.ref.generator
        return sampling_generator(self.checkpoint)


def run_checkpoint(recipe, out):
    """A run's saved state in OUT/checkpoints: its step, its training seconds and the recipe's
    networks and optimisers, the last two evaluations kept. Returns (checkpoint, manager)."""
    import tensorflow as tf

    checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64, trainable=False),
                                     train_seconds=tf.Variable(0.0, dtype=tf.float64, trainable=False),
                                     **recipe.objects)
    return checkpoint, tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=2)


def check_same_settings(path, settings):
    """Refuse to resume a run under other settings (e.g. one trained in float32 before bfloat16
    became this machine's choice): the curve would mix two recipes."""
    from gan_tf.config import with_older_defaults

    if not path.exists():
        return
    saved = with_older_defaults(json.loads(path.read_text()))  # e.g. runs from before bfloat16: float32
    changed = [f"{key}: saved {saved[key]!r}, now {value!r}" for key, value in settings.items()
               if key != "recipe" and key in saved and saved[key] != value]
    if changed:
        sys.exit(f"error: {path.parent} holds a run with other settings ({'; '.join(changed)}). "
                 "Resume it with --set for those settings, or use a new --out.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=("tutorial", "gan_tf"), required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for curve.csv and checkpoints")
    parser.add_argument("--epochs", type=float, default=None, help="stop after this many epochs")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="steps between evaluations (default: one epoch)")
    parser.add_argument("--limit", type=int, default=None, help="first N training images (smoke runs)")
    parser.add_argument("--samples", type=int, default=N_SAMPLES, help="images scored per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="gan_tf recipe only: TrainConfig overrides, e.g. learning_rate=1e-4")
    args = parser.parse_args(argv)
    if args.epochs is None and args.minutes is None:
        parser.error("give --epochs or --minutes (or both)")
    overrides = parse_overrides(args.set)
    if overrides and args.recipe == "tutorial":
        parser.error("--set applies to the gan_tf recipe only")

    # Which comes first fixes TensorFlow's start-up settings: the tutorial's script imports
    # TensorFlow itself (its defaults); a learner's gan_tf script imports gan_tf, which turns on
    # oneDNN's CPU kernels on x86 (gan_tf/__init__.py).
    importlib.import_module("tensorflow" if args.recipe == "tutorial" else "gan_tf")

    from gan_tf import data, hardware
    from gan_tf.metrics import Evaluator
    from gan_tf.plots import save_grid
    from gan_tf.train import generate

    onednn = hardware.onednn_enabled()
    print(f"oneDNN CPU kernels: {'on' if onednn else 'off'}")

    images, _ = data.load("mnist", "train")
    images = images[: args.limit]
    evaluator = Evaluator("mnist")  # trains and caches the classifier on first use
    recipe = Recipe(args.recipe, images, overrides, args.seed, args.epochs)

    checkpoint, manager = run_checkpoint(recipe, args.out)
    if manager.latest_checkpoint:
        check_same_settings(args.out / "settings.json", recipe.settings)
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    step, train_seconds = int(checkpoint.step.numpy()), float(checkpoint.train_seconds.numpy())
    curve_path = args.out / "curve.csv"
    rows = []
    if step and curve_path.exists():
        with open(curve_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        print(f"resumed at step {step} ({train_seconds:.0f} s of training)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "settings.json").write_text(json.dumps(
        {**recipe.settings, "samples": args.samples, "limit": args.limit,
         "onednn": onednn}, indent=2, default=str))

    eval_every = args.eval_every or recipe.steps_per_epoch
    last_step = recipe.last_step
    budget = math.inf if args.minutes is None else 60 * args.minutes
    print(f"{recipe.settings['recipe']}: {recipe.steps_per_epoch} steps per epoch of "
          f"{len(images)} images; evaluating {args.samples} samples every {eval_every} steps")
    machine = cpu_name()  # read once: every row of this run names the CPU it ran on

    def evaluate():
        fakes = generate(recipe.sampler(), args.samples, seed=LATENTS_SEED)
        scores = evaluator.evaluate(fakes)
        row = {"step": step, "epoch": round(step / recipe.steps_per_epoch, 3),
               "images": step * recipe.batch_size,  # tutorial: its partial batch counted as full
               "train_seconds": round(train_seconds, 2),
               **{k: round(scores[k], 4) for k in ("cfid", "inception_score", "precision", "recall")},
               "classes_covered": scores["classes_covered"],
               "peak_rss_mib": round(peak_rss_mib()), "d_loss": round(losses["d_loss"], 4),
               "g_loss": round(losses["g_loss"], 4), "learning_rate": recipe.learning_rate(), "cpu": machine}
        if recipe.sampler() is not recipe.raw_generator():  # the moving average's worth, measured
            raw = evaluator.evaluate(generate(recipe.raw_generator(), args.samples, seed=LATENTS_SEED))
            row["cfid_raw_generator"] = round(raw["cfid"], 4)
        rows.append(row)
        tmp = curve_path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(curve_path)
        checkpoint.step.assign(step)
        checkpoint.train_seconds.assign(train_seconds)
        manager.save(checkpoint_number=step)
        print(f"step {step:6d}  epoch {row['epoch']:6.2f}  {train_seconds:8.1f} s  cFID {row['cfid']:8.2f}"
              f"  IS {row['inception_score']:.2f}  P {row['precision']:.3f}  R {row['recall']:.3f}"
              f"  RSS {row['peak_rss_mib']} MiB"
              + (f"  (raw G: cFID {row['cfid_raw_generator']:.2f})" if "cfid_raw_generator" in row else ""),
              flush=True)

    losses = {"d_loss": float("nan"), "g_loss": float("nan")}
    while step < last_step and train_seconds < budget:
        epoch, skip = divmod(step, recipe.steps_per_epoch)
        batches = recipe.batches(epoch, skip)
        t0 = time.perf_counter()
        for batch in batches:
            out = recipe.step(batch, step + 1)
            step += 1
            if step % eval_every == 0 or step >= last_step:
                losses = {k: float(v) for k, v in out.items()}  # waits for the step to finish
                train_seconds += time.perf_counter() - t0
                evaluate()
                if step >= last_step or train_seconds >= budget:
                    break
                t0 = time.perf_counter()
        else:
            float(out["d_loss"])
            train_seconds += time.perf_counter() - t0
    if not rows or int(rows[-1]["step"]) != step:
        evaluate()
    # Look at the pictures, not only the numbers: 64 samples of the last state.
    save_grid(generate(recipe.sampler(), 64, seed=LATENTS_SEED), args.out / "samples.png", cols=8)
    best = min(rows, key=lambda r: float(r["cfid"]))
    print(f"SUMMARY recipe={args.recipe} steps={step} train_seconds={train_seconds:.1f} "
          f"final_cfid={float(rows[-1]['cfid']):.2f} "
          f"best_cfid={float(best['cfid']):.2f}@{best['train_seconds']}s peak_rss_mib={peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
