"""Within-class variety of the conditional GAN: is each class drawn in many styles, or as one template?

    python benchmarks/cgan_quality.py --out runs/bench/cgan                      # the default recipe
    python benchmarks/cgan_quality.py --out runs/bench/cgan_ablation --epochs 1 --dataset fashion_mnist \
        --variant "old recipe=mode_seeking=0" --variant "projection only=mode_seeking=0,label_channel=false"

Each variant trains `python -m gan_tf train cgan` (with its overrides of TrainConfig fields) into
OUT/<dataset>/<variant>, resuming a run already there, then scores --n (10,000) samples, every class
asked for equally often, against the test split with gan_tf's evaluation classifier: label
accuracy, cFID, recall, coverage, and per class the intra-class cFID and k-NN recall. The
reference row scores as many real *training* images with their true labels the same way: the
best a generator can do at this N. One JSON line per variant goes to OUT/results.jsonl, a
class x style grid (rows: classes, columns: ten fixed noise vectors) to OUT/<dataset>/<variant>.png.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_SAMPLES = 10_000
SAMPLE_SEED = 123
COLUMNS = ("label_accuracy", "cfid", "recall", "coverage", "class_recall_mean", "intra_cfid_mean",
           "intra_cfid_worst", "intra_ratio_mean", "intra_ratio_worst", "train_seconds")


def parse_variant(text):
    """'name=key=value,key=value' -> (name, {key: value}); values are JSON where they parse."""
    from time_to_quality import parse_overrides

    name, _, rest = text.partition("=")
    return name, parse_overrides([pair for pair in rest.split(",") if pair])


def scores(evaluator, images, labels):
    """The row of one image set: metrics.Evaluator's numbers plus label accuracy."""
    result = evaluator.evaluate(images, labels=labels)
    result["label_accuracy"] = evaluator.label_accuracy(images, labels)
    return result


def reference(evaluator, dataset, data_dir, n):
    """n real training images with their true labels: the floor of every number at this N."""
    from gan_tf import data

    images, labels = data.load(dataset, "train", data_dir=data_dir)
    return scores(evaluator, images[:n], labels[:n])


def class_by_style_grid(generator, path, dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from gan_tf import data, plots

    z = np.random.default_rng(4).standard_normal((10, generator.inputs[0].shape[-1])).astype("float32")
    labels = np.repeat(np.arange(10, dtype="int32"), 10)
    grid = generator([np.tile(z, (10, 1)), labels], training=False).numpy()
    fig, ax = plt.subplots(figsize=(6, 6))
    plots.show_grid(grid, cols=10, ax=ax, row_labels=data.CLASS_NAMES[dataset],
                    title=f"{path.stem}: rows are classes, columns noise vectors")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and results.jsonl")
    parser.add_argument("--dataset", action="append", choices=("mnist", "fashion_mnist"),
                        help="repeat for several (default: both)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--variant", action="append", type=parse_variant, metavar="NAME=KEY=VALUE,...",
                        help="a recipe to train: TrainConfig overrides "
                             "(default: 'default=', the CLI's defaults)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images (smoke runs)")
    parser.add_argument("--n", type=int, default=N_SAMPLES, help="images scored per row")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    import numpy as np
    from time_to_quality import cpu_name

    import gan_tf  # noqa: F401 - before TensorFlow: it picks the CPU kernels
    from gan_tf.config import TrainConfig, from_saved
    from gan_tf.metrics import Evaluator
    from gan_tf.runlog import load_config
    from gan_tf.sampling import balanced_labels, generate, load_generator
    from gan_tf.train import train

    args.out.mkdir(parents=True, exist_ok=True)
    machine = cpu_name()
    for dataset in args.dataset or ["mnist", "fashion_mnist"]:
        evaluator = Evaluator(dataset, args.data_dir, log=lambda *a: None)
        floor = reference(evaluator, dataset, args.data_dir, args.n)
        rows = [("real training images", floor, None)]
        for name, overrides in args.variant or [("default", {})]:
            config = TrainConfig(model="cgan", dataset=dataset, epochs=args.epochs, limit=args.limit,
                                 data_dir=args.data_dir, **overrides)
            run_dir = args.out / dataset / name.replace(" ", "_")
            history = train(config, run_dir, verbose=1)
            generator = load_generator(run_dir)
            labels = balanced_labels(args.n)
            result = scores(evaluator, generate(generator, args.n, seed=SAMPLE_SEED, labels=labels), labels)
            result["train_seconds"] = round(float(np.sum(history["seconds"])))
            # What "default" meant when this ran: the cgan recipe changes (MNIST: D at 4e-4 since
            # 2026-12-06; D without dropout since later that day).
            ran = from_saved(load_config(run_dir))
            result["rates"] = dict(g=ran.learning_rate, d=ran.discriminator_learning_rate)
            result["d_dropout"] = ran.d_dropout
            class_by_style_grid(generator, run_dir.parent / (run_dir.name + ".png"), dataset)
            rows.append((name, result, overrides))
        print(f"\n{dataset}, {args.epochs} epochs, {args.n:,} samples vs the test split ({machine})")
        print(f"{'recipe':28s}" + "".join(f"{c[:12]:>13s}" for c in COLUMNS))
        for name, result, overrides in rows:
            # Intra-class cFID as a multiple of real images' own, class by class (goal: at most 3).
            ratios = np.array(result["intra_cfid"]) / np.array(floor["intra_cfid"])
            result.update(intra_ratio_mean=float(np.nanmean(ratios)),
                          intra_ratio_worst=float(np.nanmax(ratios)))
            print(f"{name:28s}" + "".join(f"{result.get(c, float('nan')):13.3f}" for c in COLUMNS))
            keep = {k: v for k, v in result.items()
                    if k in COLUMNS or k in ("intra_cfid", "class_recall", "rates", "d_dropout")}
            with open(args.out / "results.jsonl", "a") as f:
                f.write(json.dumps(dict(dataset=dataset, recipe=name, overrides=overrides, epochs=args.epochs,
                                        n=args.n, cpu=machine, time=time.strftime("%Y-%m-%d %H:%M"),
                                        **keep)) + "\n")


if __name__ == "__main__":
    main()
