"""Which lever makes the default DCGAN better sooner? One time-to-quality run per lever, one table.

    python benchmarks/dcgan_levers.py --out runs/bench/levers --epochs 2
    python benchmarks/dcgan_levers.py --out runs/bench/levers --epochs 2 --lever "my try=d_dropout=0.1"

Each lever is the default `train dcgan` recipe with some TrainConfig settings changed (and the
speed-ups `train` chooses on this machine, e.g. bfloat16 on a CPU with bfloat16 units); it trains
with benchmarks/time_to_quality.py in its own process, one after the other (two TensorFlow
processes on a 2-core machine slow each other ~10x), into OUT/<name>, and resumes there when
started again. Then one table: cFID of 10,000 samples against the MNIST test split at every
evaluation (--eval-every steps), precision, recall and seconds of training at the last one.
Compare steps, not seconds, across machines; seconds only within one run of this script.
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name -> TrainConfig overrides (issue 16's list, the ones gan_tf has settings for). The levers were
# measured against the recipe of the time, batch 64 in float32; a row naming bfloat16 computed in it
# (results/dcgan_levers.txt). "default" is today's recipe (batch 16, bfloat16 where it pays).
_B64 = {"batch_size": 64, "bfloat16": False}
LEVERS = {
    "default": {},
    "float32 compute": {**_B64, "bfloat16": False},
    "bfloat16 compute": {**_B64, "bfloat16": True},
    "two learning rates (D 4e-4)": {**_B64, "d_learning_rate": 4e-4},
    "spectral norm, no dropout": {**_B64, "spectral_norm": True, "d_dropout": 0.0},
    "no dropout in D": {**_B64, "d_dropout": 0.0},
    "R1 penalty, gamma 1": {**_B64, "r1_weight": 1.0},
    "batch 32": {"batch_size": 32, "bfloat16": False},
    "batch 32, bfloat16": {"batch_size": 32, "bfloat16": True},
    "batch 16, bfloat16": {"batch_size": 16, "bfloat16": True},
    "batch 8, bfloat16": {"batch_size": 8, "bfloat16": True},
    "batch 16, bfloat16, D 4e-4": {"batch_size": 16, "bfloat16": True, "d_learning_rate": 4e-4},
    "InfoGAN code, 10 values": {**_B64, "categories": 10},
}


def folder_name(name):
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def parse_lever(text):
    """'name=key=value,key=value' -> (name, overrides); values are JSON (true, 4e-4, "x")."""
    name, _, settings = text.partition("=")
    overrides = {}
    for pair in filter(None, settings.split(",")):
        key, _, value = pair.partition("=")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return name.strip(), overrides


def train(out, overrides, args):
    command = [sys.executable, str(HERE / "time_to_quality.py"), "--recipe", "gan_tf", "--out", str(out),
               "--epochs", str(args.epochs), "--eval-every", str(args.eval_every),
               "--samples", str(args.samples)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if overrides:
        command += ["--set", *(f"{key}={json.dumps(value)}" for key, value in overrides.items())]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL if args.quiet else None)


def read_curve(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def seconds_to(rows, target):
    """Training seconds at the first evaluation with cFID <= target, or None."""
    return next((float(row["train_seconds"]) for row in rows if float(row["cfid"]) <= target), None)


def half_epoch(row):
    """The row's epoch if it falls on a half epoch (3.49 of 1,875 steps counts as 3.5), else None."""
    halves = float(row["epoch"]) * 2
    return round(halves) / 2 if abs(halves - round(halves)) < 0.02 else None


def table(results, target=50.0):
    """Markdown: a column of cFID per evaluation (by epoch, every half epoch), the seconds to reach
    cFID <= target, then the last row's other numbers."""
    epochs = sorted({e for rows in results.values() for row in rows if (e := half_epoch(row)) is not None})
    head = ["lever", *[f"cFID @ {e:g} ep" for e in epochs], f"s to cFID {target:g}",
            "precision", "recall", "train s", "s/step"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, rows in results.items():
        by_epoch = {half_epoch(row): float(row["cfid"]) for row in rows}
        last = rows[-1]
        reached = seconds_to(rows, target)
        cells = [name, *[f"{by_epoch[e]:.1f}" if e in by_epoch else "" for e in epochs],
                 "" if reached is None else f"{reached:.0f}",
                 f"{float(last['precision']):.3f}", f"{float(last['recall']):.3f}",
                 f"{float(last['train_seconds']):.0f}",
                 f"{float(last['train_seconds']) / int(last['step']):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--eval-every", type=int, default=468, help="steps between evaluations")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=None, help="first N training images (smoke runs)")
    parser.add_argument("--only", default=None,
                        help="lever names separated by ';' (names hold commas; default: all)")
    parser.add_argument("--lever", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                        help="a lever of your own (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="hide the training runs' own output")
    parser.add_argument("--target", type=float, default=50.0, help="the table's time-to-cFID column")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: tabulate the levers already trained in --out")
    args = parser.parse_args(argv)
    levers = dict(LEVERS)
    if args.only:
        wanted = [name.strip() for name in args.only.split(";")]
        unknown = [name for name in wanted if name not in levers]
        if unknown:
            parser.error(f"unknown lever {unknown[0]!r}; known: {', '.join(levers)}")
        levers = {name: levers[name] for name in wanted}
    levers.update(parse_lever(text) for text in args.lever)
    results = {}
    for name, overrides in levers.items():
        out = args.out / folder_name(name)
        if args.table_only:
            if not (out / "curve.csv").exists():
                continue
        else:
            train(out, overrides, args)
        # A folder trained further before (a longer run of the same lever) shows this run's span only.
        results[name] = [row for row in read_curve(out / "curve.csv")
                         if float(row["epoch"]) <= args.epochs + 1e-6]
    print(table(results, args.target))


if __name__ == "__main__":
    main()
