"""One quick smoke run of each benchmark script: they run and print their summary line.

The measured numbers come from full runs (see README, Benchmarks); nothing here is timed.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gan_tf.config import MODEL_DEFAULTS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.usefixtures("real_data_dir")


def _script(script, *args):
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args)],
                          capture_output=True, text=True, timeout=900)


def run(script, *args):
    result = _script(script, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def refused(script, *args):
    """The error a benchmark script stops with (it must stop with one)."""
    result = _script(script, *args)
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stderr


@pytest.mark.parametrize("recipe", ["tutorial", "gan_tf"])
def test_time_to_quality_smoke_run(tmp_path, recipe):
    # Both recipes run once; resuming is the same code for both, so only gan_tf's is resumed (CI time).
    out = tmp_path / recipe
    first = run("time_to_quality.py", "--recipe", recipe, "--epochs", 1, "--limit", 512,
                "--samples", 200, "--out", out)
    assert "SUMMARY recipe=" + recipe in first
    assert (out / "samples.png").stat().st_size > 1000  # an 8 x 8 grid of digits
    if recipe == "tutorial":
        return
    again = run("time_to_quality.py", "--recipe", recipe, "--epochs", 2, "--limit", 512,
                "--samples", 200, "--out", out)
    assert "resumed at step" in again
    with open(out / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [round(float(r["epoch"])) for r in rows] == [1, 2]
    assert all(float(r["cfid"]) > 0 and float(r["train_seconds"]) > 0 for r in rows)
    assert float(rows[1]["train_seconds"]) > float(rows[0]["train_seconds"])

    # class_balance.py re-scores the run's two kept checkpoints with the run's own samples
    lines = run("class_balance.py", out).splitlines()
    assert lines[0].endswith("class counts: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]")
    scored = [json.loads(line) for line in lines[1:-1]]
    assert lines[-1].startswith(f"SUMMARY run={out} step={rows[-1]['step']} cfid=")
    assert [s["epoch"] for s in scored] == [1, 2]
    for s, row in zip(scored, rows):
        assert sum(s["class_histogram"]) == 200 and len(s["intra_cfid"]) == 10
        assert s["cfid"] == pytest.approx(float(row["cfid"]), abs=0.01)  # the same samples as the run's
    assert "d_dropout: saved 0.3, now 0.1" in refused("class_balance.py", out, "--set", "d_dropout=0.1")
    assert "holds no checkpoints" in refused("class_balance.py", tmp_path)


def test_time_to_quality_decays_the_learning_rates_as_train_does(tmp_path):
    """--set lr_decay=true: the rates fall over the second half of the run's --epochs, as in
    `train`; the curve records G's rate, and a resume that would move the run's end is refused."""
    from gan_tf.train import decayed_rate

    out = tmp_path / "decay"
    run("time_to_quality.py", "--recipe", "gan_tf", "--epochs", 1, "--limit", 512, "--samples", 200,
        "--eval-every", 16, "--out", out, "--set", "lr_decay=true")
    with open(out / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rate = MODEL_DEFAULTS["dcgan"]["learning_rate"]
    last = 512 // MODEL_DEFAULTS["dcgan"]["batch_size"]
    assert [int(r["step"]) for r in rows] == [last // 2, last]
    assert float(rows[0]["learning_rate"]) == pytest.approx(rate)  # level through the first half
    assert decayed_rate(rate, last, last) < rate / 10  # the last step's rate, 1/16 of it here
    assert float(rows[1]["learning_rate"]) == pytest.approx(decayed_rate(rate, last, last))
    assert f"decay_steps: saved {last}, now {2 * last}" in refused(
        "time_to_quality.py", "--recipe", "gan_tf", "--epochs", 2, "--limit", 512, "--samples", 200,
        "--out", out, "--set", "lr_decay=true")
    assert "lr_decay=true needs --epochs" in refused(
        "time_to_quality.py", "--recipe", "gan_tf", "--minutes", 1, "--out", tmp_path / "x",
        "--set", "lr_decay=true")


def test_time_to_quality_refuses_to_resume_under_other_settings(tmp_path):
    """A run saved before bfloat16 existed trained in float32; resuming it where bfloat16 is now
    chosen would splice two recipes into one curve."""
    sys.path.insert(0, str(BENCHMARKS))
    from time_to_quality import check_same_settings

    saved = tmp_path / "settings.json"
    saved.write_text(json.dumps({"recipe": "gan_tf default dcgan", "batch_size": 64, "samples": 200}))
    check_same_settings(saved, {"recipe": "gan_tf default dcgan", "batch_size": 64, "bfloat16": False})
    check_same_settings(tmp_path / "none.json", {"bfloat16": True})  # a new run: nothing to compare
    with pytest.raises(SystemExit, match="bfloat16: saved False, now True; batch_size: saved 64, now 32"):
        check_same_settings(saved, {"bfloat16": True, "batch_size": 32})


def test_step_speed_smoke_run_times_the_steps_asked_for(tmp_path):
    # Two of gan_tf's four steps (CI time): --only leaves the others out, and --json still works.
    out = run("step_speed.py", "--only", "gan_tf,gan_tf_default", "--reps", 1, "--steps", 1,
              "--json", tmp_path / "speed.json")
    assert "SUMMARY step speed, batch 256" in out and "gan_tf/tutorial = " in out
    assert "GFLOP/step" in out and "oneDNN CPU kernels: tutorial's own process" in out
    assert "speed ratios gan_tf/tutorial " in out and "speed ratios gan_tf/tutorial_here " in out
    assert "gan_tf_tutorial_recipe" not in out and "XLA/no XLA" not in out
    speed = json.loads((tmp_path / "speed.json").read_text())
    # The tutorial's step runs twice: in its own process and in gan_tf's.
    default_batch = MODEL_DEFAULTS["dcgan"]["batch_size"]
    assert speed["batch_size"] == {"tutorial": 256, "tutorial_here": 256, "gan_tf": 256,
                                   "gan_tf_default": default_batch}
    assert all(seconds > 0 for seconds in speed["seconds_per_step"].values())


def test_step_speed_refuses_unknown_steps_and_json_without_the_default_step(tmp_path):
    for args, message in [(["--only", "gan_tf,fast"], "unknown step(s) fast"),
                          (["--only", "gan_tf", "--json", tmp_path / "s.json"], "needs gan_tf_default")]:
        result = subprocess.run([sys.executable, str(BENCHMARKS / "step_speed.py"), *map(str, args)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "s.json").exists()


def test_kernels_smoke_run():
    out = run("kernels.py", "--reps", 1)
    assert "SUMMARY kernels, batch 256" in out
    rows = [line for line in out.splitlines() if "GFLOP/s" in line]
    assert len(rows) == 7 and all(line.count(" ms ") == 2 for line in rows)


def test_median_interval_is_the_binomial_order_statistic_interval():
    sys.path.insert(0, str(BENCHMARKS))
    from step_speed import median_interval, verdict

    assert median_interval([1.0] * 5) is None  # 2 / 2**5 > 5 %: no 95 % interval from 5 values
    # n = 6: P(all on one side) = 2/64 = 3.1 % <= 5 %, so the extremes bound the median
    assert median_interval([0.9, 1.2, 1.0, 1.1, 0.95, 1.05]) == (0.9, 1.2)
    # n = 9: P(Bin(9, 1/2) <= 1) = 10/512 <= 2.5 % < P(<= 2) = 46/512: 2nd smallest and largest
    values = [0.91, 0.99, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.20]
    assert median_interval(values) == (0.99, 1.06)
    assert verdict((0.99, 1.06)).startswith("no difference")
    assert verdict((1.01, 1.06)).startswith("faster")
    assert verdict((0.90, 0.98)).startswith("slower")
    # n = 31: k = 10 (P(Bin(31, 1/2) <= 9) = 1.5 % <= 2.5 % < P(<= 10) = 3.5 %)
    assert median_interval(list(range(31))) == (9, 21)


def write_curve(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", "train_seconds", "cfid"])
        writer.writeheader()
        writer.writerows(dict(zip(writer.fieldnames, row)) for row in rows)


def test_compare_curves_puts_both_recipes_on_one_step_clock(tmp_path):
    # Reference: 10 steps per epoch at 2 s a step; gan_tf: 1 s a step.
    write_curve(tmp_path / "tutorial.csv", [(10, 1, 25, 300.0), (20, 2, 45, 120.0), (30, 3, 70, 80.0)])
    write_curve(tmp_path / "gan_tf.csv", [(2, 0.1, 3, 150.0), (4, 0.2, 5, 79.0), (6, 0.3, 7, 60.0)])
    (tmp_path / "speed.json").write_text(json.dumps({
        "cpu": "test", "seconds_per_step": {"tutorial": 2.0, "gan_tf": 2.0, "gan_tf_default": 1.0},
        "batch_size": {"tutorial": 256, "gan_tf": 256, "gan_tf_default": 64}}))
    common = ["--tutorial", tmp_path / "tutorial.csv", "--gan-tf", tmp_path / "gan_tf.csv",
              "--speed", tmp_path / "speed.json"]
    # Target: cFID 80 at epoch 3 = 60 s; gan_tf first reaches it at step 4 = 4 s.
    out = run("compare_curves.py", *common, "--target-epoch", 3, "--plot", tmp_path / "curves.png")
    assert "SUMMARY reference=complete target_cfid=80.00 time_fraction=0.067 goal_met=True" in out
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # An unfinished reference is said to be one, and the goal is not called met.
    out = run("compare_curves.py", *common, "--target-epoch", 30)
    assert "INCOMPLETE (epoch 3 of 30)" in out and "goal_met=False" in out


def test_memory_smoke_run():
    out = run("memory.py", "--epochs", 1, "--", "--limit", 256)
    assert "SUMMARY dcgan 1 epoch(s) of MNIST, --limit 256" in out and "GiB" in out


def test_cgan_quality_smoke_run(tmp_path):
    out = run("cgan_quality.py", "--out", tmp_path, "--dataset", "mnist", "--epochs", 1, "--limit", 256,
              "--n", 300, "--variant", "no term=mode_seeking=0,eval_every=0")
    assert "real training images" in out and "no term" in out
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["recipe"] for r in rows] == ["real training images", "no term"]
    assert rows[1]["overrides"] == {"mode_seeking": 0, "eval_every": 0}
    assert rows[1]["rates"] == {"g": 2e-4, "d": 4e-4}  # the MNIST cgan recipe's two learning rates
    assert rows[1]["d_dropout"] == 0.0  # and its discriminator without dropout
    real, fake = rows
    assert real["intra_ratio_mean"] == pytest.approx(1.0)  # the floor divided by itself
    assert real["label_accuracy"] > 0.95 and real["class_recall_mean"] > fake["class_recall_mean"]
    assert (tmp_path / "mnist" / "no_term.png").exists()


def test_colour_generator_smoke_run(tmp_path):
    from gan_tf import data

    try:
        data.example_folder("emoji")
    except data.DataError:
        pytest.skip("the emoji images are not where gan_tf looks (data/README.md)")
    out = run("colour_generator.py", "--out", tmp_path, "--images", 128, "--steps", 3, "--reference", 600)
    lines = [line for line in out.splitlines() if " steps 3 " in line]
    assert [line.split()[0] for line in lines] == ["transposed_dropout0.3", "resize_dropout0.3",
                                                   "transposed_dropout0.0", "resize_dropout0.0"]
    assert all((tmp_path / f"{line.split()[0]}.png").exists() for line in lines)


def test_distribute_speed_smoke_run():
    # Two of the four set-ups (the other two run in tests/test_distribute.py): CI time.
    out = run("distribute_speed.py", "--rounds", 1, "--steps", 1, "--batch-size", 16,
              "--setups", "mirrored x2,2 workers")
    summary = json.loads(out.split("SUMMARY ", 1)[1])
    assert summary["ratio_to"] == "mirrored x2" and summary["ratios"]["mirrored x2"] == 1.0
    assert summary["ratios"]["2 workers"] > 0
    paper = out.split("On paper", 1)[1].splitlines()
    rows = [line.split() for line in paper if line.split() and line.split()[0] in ("1", "2", "4", "8")]
    assert [row[0] for row in rows] == ["1", "2", "4", "8"] and rows[0][-1] == "1.00x"
    speedups = [float(row[-1].rstrip("x")) for row in rows]
    assert speedups == sorted(speedups) and speedups[-1] < 8  # the all-reduce costs something


def test_dcgan_levers_smoke_run_tables_each_lever(tmp_path):
    out = run("dcgan_levers.py", "--out", tmp_path, "--epochs", 1, "--eval-every", 4, "--limit", 512,
              "--samples", 200, "--only", "InfoGAN code, 10 values", "--lever", "tiny lr=learning_rate=1e-5",
              "--quiet")
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| lever | cFID @ 0.5 ep | cFID @ 1 ep |")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| InfoGAN code, 10 values", "| tiny lr"]
    assert all(float(line.split(" | ")[2]) > 0 for line in table[2:])  # a cFID for every lever
    saved = json.loads((tmp_path / "tiny_lr" / "settings.json").read_text())
    assert saved["learning_rate"] == 1e-5 and json.loads(
        (tmp_path / "infogan_code__10_values" / "settings.json").read_text())["categories"] == 10
    # --table-only trains nothing and tabulates the runs that exist
    again = run("dcgan_levers.py", "--out", tmp_path, "--epochs", 1, "--table-only",
                "--lever", "tiny lr=learning_rate=1e-5")
    assert [line for line in again.splitlines() if line.startswith("| ")] == table
