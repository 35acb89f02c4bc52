"""One quick smoke run of each benchmark script: they run and print their summary line.

The measured numbers come from full runs (see README, Benchmarks); nothing here is timed.
"""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.usefixtures("real_data_dir")


def run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("recipe", ["tutorial", "gan_tf"])
def test_time_to_quality_smoke_run_resumes(tmp_path, recipe):
    out = tmp_path / recipe
    first = run("time_to_quality.py", "--recipe", recipe, "--epochs", 1, "--limit", 512,
                "--samples", 200, "--out", out)
    assert "SUMMARY recipe=" + recipe in first
    again = run("time_to_quality.py", "--recipe", recipe, "--epochs", 2, "--limit", 512,
                "--samples", 200, "--out", out)
    assert "resumed at step" in again
    with open(out / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [round(float(r["epoch"])) for r in rows] == [1, 2]
    assert all(float(r["cfid"]) > 0 and float(r["train_seconds"]) > 0 for r in rows)
    assert float(rows[1]["train_seconds"]) > float(rows[0]["train_seconds"])


def test_step_speed_smoke_run():
    out = run("step_speed.py", "--reps", 1, "--steps", 1)
    assert "SUMMARY step speed ratio gan_tf/tutorial" in out
    assert "GFLOP/step" in out


def test_memory_smoke_run():
    out = run("memory.py", "--epochs", 1, "--", "--limit", 256)
    assert "SUMMARY dcgan 1 epoch(s) of MNIST, --limit 256" in out and "GiB" in out
