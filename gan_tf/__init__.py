"""gan_tf: a notebook-first kit for learning GANs with TensorFlow 2 / Keras 3.

Modules, in the order the data flows through them:
data -> models -> losses -> steps -> train -> plots, with config for the settings and
cli for ``python -m gan_tf``. Import the one you need, e.g. ``from gan_tf import data``.
"""

import os

# TensorFlow's C++ start-up lines (CPU features, oneDNN) look like errors to learners.
# Respect a value the user has set; this has to happen before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
