"""Steps per second under tf.distribute on this machine, and what to expect on N GPUs.

    python benchmarks/distribute_speed.py [--model dcgan] [--steps 30] [--rounds 3] [--batch-size 64]

A correctness run, not a speed-up claim: this machine has one CPU (2 cores), so two replicas or
two workers share the same cores, and the all-reduce between them is pure overhead. It times
the training step (``gan_tf.steps.make_step``, real MNIST batches, after warm-up) in four set-ups,
each in a process of its own (a CPU split into logical devices, or a worker's server, must be set
up before TensorFlow starts), one after another, --rounds times in turn:
- ``default``: one device, no strategy (what `train` does without --strategy);
- ``mirrored x1``: MirroredStrategy on one device: the cost of the strategy's machinery alone;
- ``mirrored x2``: MirroredStrategy on the CPU split into 2 logical devices;
- ``2 workers``: MultiWorkerMirroredStrategy, two processes talking over 127.0.0.1.
Prints each set-up's median steps/second and its ratio to the first (``default``; --setups
chooses).

Then, on paper, for N GPUs: the dcgan step's FLOPs (counted by benchmarks/step_speed.step_flops at this
batch per GPU) and the all-reduce volume (both networks' parameters x 4 bytes, summed once per step;
a ring all-reduce sends about 2 (N-1)/N times that through each link), under assumptions you can
change: --gpu-tflops sustained per GPU, --link-gbs per link (NVLink ~100 GB/s, PCIe 4 x16 ~25,
10 Gbit Ethernet ~1.2). Time per step = compute + all-reduce (no overlap: a pessimistic bound).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUPS = ("default", "mirrored x1", "mirrored x2", "2 workers")
sys.path.insert(0, str(HERE))


def time_steps(model, setup, steps, batch_size, data_dir):
    """In this process: build the run's state under ``setup`` and time ``steps`` training steps."""
    import gan_tf  # noqa: F401  (before TensorFlow)
    from gan_tf import distribute

    if setup == "mirrored x2":
        distribute.split_cpu(2)
    import tensorflow as tf

    from gan_tf.checkpoints import build
    from gan_tf.config import TrainConfig
    from gan_tf.steps import make_step
    from gan_tf.train import epoch_batches, training_data

    name = {"default": "default", "mirrored x1": "mirrored", "mirrored x2": "mirrored",
            "2 workers": "multi-worker"}[setup]
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0"]) if setup == "mirrored x1"
                else distribute.make_strategy(name))
    config = TrainConfig(model=model, strategy=name, batch_size=batch_size, data_dir=data_dir,
                         limit=batch_size * (steps + 5) * (5 if model == "wgan_gp" else 1)).validate()
    config.jit_compile, config.mixed_precision = False, False
    parts = training_data(config)
    state = build(config, strategy)
    step = make_step(config, strategy)
    batches = iter(epoch_batches(config, parts, 1, strategy))
    for _ in range(3):  # trace and warm up
        float(step(state, next(batches))["d_loss"])
    t0 = time.perf_counter()
    for _ in range(steps):
        losses = step(state, next(batches))
    float(losses["d_loss"])  # wait for the last step
    return steps / (time.perf_counter() - t0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(setup, args):
    """Steps/second of one set-up, measured in fresh process(es)."""
    command = [sys.executable, __file__, "--worker", setup, "--model", args.model, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), *(["--data-dir", args.data_dir] * bool(args.data_dir))]
    if setup != "2 workers":
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode:
            sys.exit(f"{setup} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])["steps_per_second"]
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={
        **os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    outputs = [worker.communicate(timeout=1800) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        if worker.returncode:
            sys.exit(f"2 workers failed:\n{stderr[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])["steps_per_second"]


def on_paper(batch_size, gpu_tflops, link_gbs):
    """Estimated images/second of the dcgan step on 1, 2, 4, 8 GPUs, each with ``batch_size`` images."""
    from step_speed import step_flops

    from gan_tf import models  # gan_tf before TensorFlow

    generator, discriminator = models.make_generator(), models.make_discriminator()
    flops = step_flops(generator, discriminator, batch_size)
    params = generator.count_params() + discriminator.count_params()
    volume = 4 * params
    print(f"\nOn paper (the dcgan step, {batch_size} images per GPU): {flops / 1e9:.2f} GFLOP per step "
          f"per GPU, {params:,} parameters -> {volume / 1e6:.1f} MB summed across GPUs every step.")
    print(f"Assumed: {gpu_tflops} TFLOP/s sustained per GPU, {link_gbs} GB/s per link, ring all-reduce, "
          "no overlap of compute and communication.")
    print(f"{'GPUs':>5} {'compute ms':>11} {'all-reduce ms':>14} {'images/s':>10} {'speed-up':>9}")
    one = None
    for n in (1, 2, 4, 8):
        compute = flops / (gpu_tflops * 1e12)
        reduce = 2 * (n - 1) / n * volume / (link_gbs * 1e9)
        images = n * batch_size / (compute + reduce)
        one = one or images
        print(f"{n:>5} {compute * 1e3:>11.2f} {reduce * 1e3:>14.2f} {images:>10,.0f} {images / one:>8.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dcgan", choices=("dcgan", "cgan", "wgan_gp"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--gpu-tflops", type=float, default=10.0)
    parser.add_argument("--link-gbs", type=float, default=25.0)
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help="comma-separated set-ups to time; ratios are to the first")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rate = time_steps(args.model, args.worker, args.steps, args.batch_size, args.data_dir)
        print(json.dumps({"steps_per_second": rate}))
        return
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                       if line.startswith("Model name")), "unknown")
    print(f"CPU: {model_name}, {os.cpu_count()} cores; {args.model}, global batch {args.batch_size}, "
          f"{args.steps} timed steps, {args.rounds} rounds")
    setups = [setup.strip() for setup in args.setups.split(",")]
    if unknown := [setup for setup in setups if setup not in SETUPS]:
        parser.error(f"unknown set-up(s) {', '.join(unknown)}; choose from {', '.join(SETUPS)}")
    rates = {setup: [] for setup in setups}
    for round_ in range(args.rounds):
        for setup in setups if round_ % 2 == 0 else setups[::-1]:
            rates[setup].append(measure(setup, args))
            print(f"  round {round_ + 1} {setup:>12}: {rates[setup][-1]:.2f} steps/s", flush=True)
    base = statistics.median(rates[setups[0]])
    print(f"\n{'set-up':>12} {'steps/s':>8} {'images/s':>9} {'vs ' + setups[0]:>14}")
    for setup in setups:
        rate = statistics.median(rates[setup])
        print(f"{setup:>12} {rate:>8.2f} {rate * args.batch_size:>9.0f} {rate / base:>13.2f}x")
    on_paper(args.batch_size, args.gpu_tflops, args.link_gbs)
    summary = {setup: round(statistics.median(rates[setup]) / base, 3) for setup in setups}
    print("SUMMARY " + json.dumps({"cpu": model_name, "model": args.model, "ratio_to": setups[0],
                                   "ratios": summary}))


if __name__ == "__main__":
    main()
