"""gan_tf: a notebook-first kit for learning GANs with TensorFlow 2 / Keras 3.

Modules, in the order the data flows through them:
data -> models -> losses (augment: DiffAugment) -> steps -> checkpoints -> train (with runlog and
sampling) -> metrics (folder_metrics for image folders), plots; config holds the settings, hardware
the speed-ups, cli ``python -m gan_tf``.
Import the one you need, e.g. ``from gan_tf import data``.
"""

import os
import platform
import sys

# What the process looked like before gan_tf touched it (gan_tf.hardware warns when TensorFlow
# came first on a CPU where that costs speed).
TENSORFLOW_IMPORTED_FIRST = "tensorflow" in sys.modules
ONEDNN_USER_SETTING = os.environ.get("TF_ENABLE_ONEDNN_OPTS")

# Both settings are read once, when TensorFlow is imported: importing gan_tf first applies
# them; a value the user has set always wins.
# TensorFlow's C++ log lines look like errors to learners. Level 2 hides its information and
# warnings; in a notebook kernel level 3 also hides its error lines, which there show as red boxes in
# every training cell ("remapper failed": a graph fusion TensorFlow skips, harmless). Outside a
# notebook they stay visible (one may say why a GPU was not found). TensorFlow 2.21 prints a few
# start-up lines (oneDNN, "Could not find cuda drivers") before it reads this setting.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if "ipykernel" in sys.modules else "2")
# TensorFlow turns its oneDNN CPU kernels on by default only on Linux x86 CPUs with AVX-512
# VNNI or BF16, AVX-VNNI or AMX. On an AVX2-only CPU (AMD Zen 3 here) they made the DCGAN
# tutorial's step 1.4x faster, its transposed convolutions almost 3x (benchmarks/step_speed.py):
# turn them on for every x86 CPU.
X86 = platform.machine().lower() in ("x86_64", "amd64")
if X86:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
