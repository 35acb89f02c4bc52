"""Class balance: which digits a time_to_quality.py run draws, and how well it draws each.

    python benchmarks/class_balance.py runs/bench/dropout_0.1_10ep --set d_dropout=0.1

A generator can draw every digit well and still draw the wrong mix: precision rises while cFID
rises too. This restores each checkpoint a run kept (its last two evaluations), draws the
samples time_to_quality.py scored (10,000 from the moving average, latent seed 12345), and
prints one JSON line per checkpoint: the classifier's class histogram, to set beside the test
split's, and each class's intra-class cFID. Give the run's own --set; other settings are refused.
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from time_to_quality import (  # noqa: E402
    LATENTS_SEED,
    N_SAMPLES,
    Recipe,
    check_same_settings,
    parse_overrides,
    run_checkpoint,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a time_to_quality.py --recipe gan_tf --out folder")
    parser.add_argument("--epochs", type=float, default=None, help="the run's --epochs (lr_decay runs only)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the run's --set")
    args = parser.parse_args(argv)
    if not (args.run / "checkpoints" / "checkpoint").exists() or not (args.run / "settings.json").exists():
        sys.exit(f"error: {args.run} holds no checkpoints; give a time_to_quality.py --out folder")
    saved = json.loads((args.run / "settings.json").read_text())
    samples, limit = saved.get("samples", N_SAMPLES), saved.get("limit")  # as the run scored them
    seed = saved.get("seed", 0)

    importlib.import_module("gan_tf")  # before TensorFlow: oneDNN's CPU kernels, as the run had them
    import numpy as np

    from gan_tf import data
    from gan_tf.metrics import Evaluator
    from gan_tf.train import generate

    overrides = parse_overrides(args.set)
    images, _ = data.load("mnist", "train")
    images = images[:limit]  # the run's epochs
    recipe = Recipe("gan_tf", images, overrides, seed, args.epochs)
    check_same_settings(args.run / "settings.json", recipe.settings)
    _, test_labels = data.load("mnist", "test")
    real = np.bincount(test_labels, minlength=10)
    print("real test split, class counts:", real.tolist())

    evaluator = Evaluator("mnist")
    checkpoint, manager = run_checkpoint(recipe, args.run)
    for path in manager.checkpoints:
        checkpoint.restore(path).assert_existing_objects_matched()
        step = int(checkpoint.step.numpy())
        scores = evaluator.evaluate(generate(recipe.sampler(), samples, seed=LATENTS_SEED))
        print(json.dumps({
            "run": str(args.run), "settings": overrides, "seed": seed, "step": step,
            "epoch": round(step / recipe.steps_per_epoch, 3),
            **{k: round(scores[k], 3) for k in ("cfid", "precision", "recall", "density", "coverage")},
            "class_histogram": scores["class_histogram"],
            "intra_cfid": [round(v, 1) for v in scores["intra_cfid"]],
            "intra_cfid_mean": round(scores["intra_cfid_mean"], 2)}), flush=True)
    # The last checkpoint's mix: each class's share of the samples over its share of the test split
    share = np.array(scores["class_histogram"]) / samples / (real / real.sum())
    print(f"SUMMARY run={args.run} step={step} cfid={scores['cfid']:.2f} "
          f"least_drawn={share.argmin()}@{share.min():.2f}x most_drawn={share.argmax()}@{share.max():.2f}x")


if __name__ == "__main__":
    main()
