"""Kernels: the DCGAN's convolutions with TensorFlow's own CPU kernels and with oneDNN's.

    python benchmarks/kernels.py [--reps 15]

Why gan_tf turns oneDNN on (gan_tf/__init__.py): each operation below is timed at the
tutorial's batch of 256 in two fresh processes, one with TF_ENABLE_ONEDNN_OPTS=0 and one with
=1 (TensorFlow reads it once, at import). Shapes are the tutorial's layers; a transposed
convolution is the same operation as a convolution's input gradient. Prints the median time of
each, its FLOP rate (2 per multiply-add) and the speed-up. Ends with one summary line.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

BATCH = 256


def operations():
    """name -> (FLOPs, function of no arguments), built on random inputs of the layers' shapes."""
    import tensorflow as tf

    def conv_t(x_shape, kernel, out_shape, stride):
        x, w = tf.random.normal([BATCH, *x_shape]), tf.random.normal(kernel)
        f = tf.function(lambda: tf.nn.conv2d_transpose(x, w, [BATCH, *out_shape], stride, "SAME"))
        return 2 * BATCH * x_shape[0] * x_shape[1] * math.prod(kernel), f

    def conv(x_shape, kernel, stride):
        x, w = tf.random.normal([BATCH, *x_shape]), tf.random.normal(kernel)
        f = tf.function(lambda: tf.nn.conv2d(x, w, stride, "SAME"))
        out = x_shape[0] // stride
        return 2 * BATCH * out * out * math.prod(kernel), f

    def filter_grad(x_shape, kernel, dy_shape):
        x, dy = tf.random.normal([BATCH, *x_shape]), tf.random.normal([BATCH, *dy_shape])
        f = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=kernel, out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME"))
        return 2 * BATCH * dy_shape[0] * dy_shape[1] * math.prod(kernel), f

    return {
        # transposed-convolution kernels are (h, w, out, in)
        "G transposed conv 7x7x256 -> 7x7x128, stride 1":
            conv_t((7, 7, 256), (5, 5, 128, 256), (7, 7, 128), 1),
        "G transposed conv 7x7x128 -> 14x14x64 (= D's input gradient)":
            conv_t((7, 7, 128), (5, 5, 64, 128), (14, 14, 64), 2),
        "G transposed conv 14x14x64 -> 28x28x1": conv_t((14, 14, 64), (5, 5, 1, 64), (28, 28, 1), 2),
        "D conv 28x28x1 -> 14x14x64": conv((28, 28, 1), (5, 5, 1, 64), 2),
        "D conv 14x14x64 -> 7x7x128": conv((14, 14, 64), (5, 5, 64, 128), 2),
        "plain conv 7x7x256 -> 7x7x128, stride 1": conv((7, 7, 256), (5, 5, 256, 128), 1),
        "weight gradient of the stride-1 layer": filter_grad((7, 7, 256), (5, 5, 256, 128), (7, 7, 128)),
    }


def child(reps):
    """Time every operation in this process; print {name: [flops, median seconds]} as JSON."""
    results = {}
    for name, (flops, f) in operations().items():
        f().numpy()  # trace and warm up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f().numpy()
            times.append(time.perf_counter() - t0)
        results[name] = [flops, statistics.median(times)]
    print(json.dumps(results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=15, help="timings per operation (median)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.reps)

    from time_to_quality import cpu_name

    measured = {}
    for setting in ("0", "1"):  # one after the other: they never share the CPU
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run([sys.executable, __file__, "--child", "--reps", str(args.reps)],
                                capture_output=True, text=True, env=env)
        if result.returncode != 0:
            sys.exit(result.stderr[-2000:])
        measured[setting] = json.loads(result.stdout.splitlines()[-1])
    print(f"machine: {cpu_name()}; batch {BATCH}; median of {args.reps} timings each")
    print(f"{'operation':62s} {'GFLOP':>6s}  {'TensorFlow kernels':>22s}  {'oneDNN kernels':>22s}  speed-up")
    speedups = []
    for name, (flops, own) in measured["0"].items():
        onednn = measured["1"][name][1]
        speedups.append(own / onednn)
        print(f"{name:62s} {flops / 1e9:6.2f}  {own * 1e3:7.1f} ms {flops / own / 1e9:6.1f} GFLOP/s  "
              f"{onednn * 1e3:7.1f} ms {flops / onednn / 1e9:6.1f} GFLOP/s  {own / onednn:5.2f}x")
    largest = next(iter(measured["0"]))
    print(f"SUMMARY kernels, batch {BATCH}: oneDNN / TensorFlow's own speed-up {min(speedups):.2f}x to "
          f"{max(speedups):.2f}x; {largest}: {measured['0'][largest][1] / measured['1'][largest][1]:.2f}x")


if __name__ == "__main__":
    main()
