"""Peak memory: the resident set size of a full-MNIST training run, as a learner starts it.

    python benchmarks/memory.py [--model dcgan] [--epochs 1] [-- extra train options]

Runs `python -m gan_tf train MODEL --epochs N --out <temporary dir>` in a child process and
reports the child's peak resident set size (getrusage(RUSAGE_CHILDREN).ru_maxrss, which on
Linux is the largest RSS any finished child reached). Ends with one summary line.
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time

LIMIT_GIB = 3.0  # the budget: a learner's laptop must not swap


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dcgan", choices=("dcgan", "cgan", "wgan", "wgan_gp"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more `train` options, after --")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "gan_tf", "train", args.model, "--epochs", str(args.epochs),
                   "--out", out, "--quiet", *args.extra]
        print("running:", " ".join(command), flush=True)
        t0 = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        sys.exit(f"training failed with exit code {result.returncode}")
    print("\n".join(line for line in result.stdout.splitlines() if line.startswith("epoch")))
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    verdict = "under" if peak_gib < LIMIT_GIB else "OVER"
    what = "MNIST, " + (" ".join(args.extra) if args.extra else "all 60,000 images")
    print(f"SUMMARY {args.model} {args.epochs} epoch(s) of {what}: peak RSS {peak_gib:.2f} GiB "
          f"({verdict} the {LIMIT_GIB:.0f} GiB budget), {seconds:.0f} s wall")


if __name__ == "__main__":
    main()
