"""Which speed-ups a machine gets: mixed precision and XLA on a GPU, oneDNN's kernels on a CPU.

Taught in notebooks/03_wgan_gp.ipynb. Follows TensorFlow's guides:
- "Mixed precision" (tensorflow.org/guide/mixed_precision): the ``mixed_float16`` policy,
  loss scaling (``keras.optimizers.LossScaleOptimizer``), float32 model outputs; it speeds up
  GPUs of compute capability 7.0 or higher (Tensor Cores) and only slows a CPU down.
- "XLA" (tensorflow.org/xla): ``tf.function(jit_compile=True)`` fuses a step's operations into
  a few kernels, which pays off most on a GPU.
The decision is a pure function of the devices, so it is tested on a CPU-only machine.
It is what notebook 03 passes to its WGANs.

The DCGAN and cGAN steps (TrainConfig.jit_compile=None) get XLA where it was measured to pay
off (``xla_pays_off``): on a GPU, and on a CPU running TensorFlow's own kernels. On a CPU with
oneDNN's kernels (which gan_tf turns on: see gan_tf/__init__.py) XLA is slower, because its CPU
compiler does not use them.
"""

import tensorflow as tf

TENSOR_CORES = (7, 0)  # compute capability from which float16 math is fast


def choose_settings(gpus):
    """Settings for a list of visible GPUs, each a dict with 'compute_capability' (major, minor).

    Returns {'device', 'mixed_precision', 'jit_compile', 'schedule'}; schedule is 'full' on
    a GPU and 'reduced' on a CPU, where the full schedule would take hours.
    """
    if not gpus:
        return {"device": "CPU", "mixed_precision": False, "jit_compile": False,
                "schedule": "reduced"}
    capabilities = [tuple(g.get("compute_capability") or (0, 0)) for g in gpus]
    return {"device": "GPU", "mixed_precision": min(capabilities) >= TENSOR_CORES,
            "jit_compile": True, "schedule": "full"}


def visible_gpus():
    """This machine's GPUs, described as ``choose_settings`` expects."""
    return [tf.config.experimental.get_device_details(gpu)
            for gpu in tf.config.list_physical_devices("GPU")]


def detect():
    """The settings for this machine."""
    return choose_settings(visible_gpus())


def onednn_enabled():
    """Whether TensorFlow runs CPU operations with oneDNN's kernels (fixed when it was imported)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # what TensorFlow's own tests ask

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow without that hook: trust the setting
        import os

        return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


def xla_pays_off(device, onednn):
    """Whether to XLA-compile a DCGAN or cGAN step. Measured on a 2-core AVX2 CPU
    (benchmarks/step_speed.py, batch 64): XLA made the step 1.3x faster than TensorFlow's own
    kernels, but 1.1x slower than oneDNN's. On a GPU it fuses the step's many small kernels."""
    return device == "GPU" or not onednn


def jit_compile_for(setting):
    """The XLA setting a step runs with: TrainConfig.jit_compile, or for None ``xla_pays_off``
    on this machine."""
    if setting is not None:
        return setting
    return xla_pays_off("GPU" if tf.config.list_physical_devices("GPU") else "CPU", onednn_enabled())
