"""Time to quality, compared: how soon gan_tf's default recipe reaches the cFID that the
tutorial's recipe reaches after 30 epochs.

    python benchmarks/compare_curves.py --tutorial runs/bench/tutorial/curve.csv \\
        --gan-tf runs/bench/gan_tf/curve.csv --speed runs/bench/step_speed.json [--plot FILE.png]

Both curves come from benchmarks/time_to_quality.py; --speed is the JSON that
benchmarks/step_speed.py --json writes. The comparison is made on one clock, the "step clock":
each curve's step count times that recipe's seconds per step, both measured side by side in
the one step_speed run. That clock does not care where, or under what load, each curve was
trained (a 30-epoch reference run can span sessions and machines); the seconds each curve
measured itself are printed beside it. Evaluation time is excluded from both.
"""

import argparse
import csv
import json
import math

NUMBERS = ("step", "epoch", "train_seconds", "cfid")


def read_curve(path):
    with open(path, newline="") as f:
        return [{key: float(row[key]) for key in NUMBERS} for row in csv.DictReader(f)]


def first_reaching(curve, target):
    """The first row whose cFID is at or below ``target``, or None."""
    return next((row for row in curve if row["cfid"] <= target), None)


def plot(curves, target, reference_seconds, hit_seconds, path):
    """Both curves on the step clock (log-log), the target cFID and where each recipe reaches it."""
    import matplotlib

    matplotlib.use("Agg")  # a file, not a window: this runs in terminals and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, (minutes, cfid) in curves.items():
        ax.plot(minutes, cfid, marker=".", label=label)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target cFID {target:.1f}")
    for seconds, what in ((reference_seconds, "tutorial"), (hit_seconds, "gan_tf")):
        if seconds is not None:
            ax.axvline(seconds / 60, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"{what}: {seconds / 60:.0f} min", (seconds / 60, target),
                        textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="training time, minutes on the step clock",
           ylabel="cFID of 10,000 samples (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tutorial", required=True, help="curve.csv of --recipe tutorial")
    parser.add_argument("--gan-tf", required=True, help="curve.csv of --recipe gan_tf")
    parser.add_argument("--speed", required=True, help="JSON written by step_speed.py --json")
    parser.add_argument("--target-epoch", type=float, default=30.0,
                        help="the tutorial epoch whose cFID gan_tf must reach")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="also draw both curves on the step clock into this image")
    args = parser.parse_args(argv)

    tutorial, gan_tf = read_curve(args.tutorial), read_curve(args.gan_tf)
    speed = json.load(open(args.speed))
    per_step = {"tutorial": speed["seconds_per_step"]["tutorial"],
                "gan_tf": speed["seconds_per_step"]["gan_tf_default"]}
    print(f"step clock from step_speed.py on {speed['cpu']}: tutorial {per_step['tutorial'] * 1000:.1f} ms "
          f"per step of {speed['batch_size']['tutorial']}, gan_tf default {per_step['gan_tf'] * 1000:.1f} ms "
          f"per step of {speed['batch_size']['gan_tf_default']}")
    for name, curve in (("tutorial", tutorial), ("gan_tf", gan_tf)):
        print(f"\n{name} recipe: {len(curve)} evaluations (cFID of 10,000 samples)")
        print(f"{'step':>7s} {'epoch':>7s} {'step clock s':>13s} {'measured s':>11s} {'cFID':>8s}")
        for row in curve:
            print(f"{row['step']:7.0f} {row['epoch']:7.2f} {row['step'] * per_step[name]:13.0f} "
                  f"{row['train_seconds']:11.0f} {row['cfid']:8.2f}")

    reached = [row for row in tutorial if row["epoch"] >= args.target_epoch]
    if reached:
        target_row, status = reached[0], "complete"
    else:  # say so, and compare against the last epoch measured so far
        target_row = tutorial[-1]
        status = f"INCOMPLETE (epoch {target_row['epoch']:g} of {args.target_epoch:g})"
    target = target_row["cfid"]
    reference_seconds = target_row["step"] * per_step["tutorial"]
    hit = first_reaching(gan_tf, target)
    print(f"\nreference {status}: cFID {target:.2f} after epoch {target_row['epoch']:g}, "
          f"{reference_seconds:.0f} s on the step clock ({target_row['train_seconds']:.0f} s measured)")
    if hit is None:
        best = min(gan_tf, key=lambda row: row["cfid"])
        print(f"gan_tf never reached cFID {target:.2f}; "
              f"its best was {best['cfid']:.2f} at step {best['step']:.0f}")
        fraction = math.inf
    else:
        gan_seconds = hit["step"] * per_step["gan_tf"]
        fraction = gan_seconds / reference_seconds
        print(f"gan_tf reached it at step {hit['step']:.0f} "
              f"(epoch {hit['epoch']:g}, cFID {hit['cfid']:.2f}): "
              f"{gan_seconds:.0f} s on the step clock ({hit['train_seconds']:.0f} s measured), "
              f"{fraction:.3f} of the reference's time (goal: at most 0.100)")
    if args.plot:
        curves = {f"{name} recipe ({curve[-1]['epoch']:.3g} epochs)": (
            [row["step"] * per_step[name] / 60 for row in curve], [row["cfid"] for row in curve])
            for name, curve in (("tutorial", tutorial), ("gan_tf", gan_tf))}
        plot(curves, target, reference_seconds, None if hit is None else gan_seconds, args.plot)
    print(f"SUMMARY reference={status.split()[0].lower()} target_cfid={target:.2f} "
          f"time_fraction={fraction:.3f} goal_met={fraction <= 0.1 and status == 'complete'}")


if __name__ == "__main__":
    main()
