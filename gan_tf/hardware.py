"""Which speed-ups a machine gets: mixed precision and XLA on a GPU, oneDNN's kernels and
bfloat16 on a CPU.

Taught in notebooks/03_wgan_gp.ipynb. One function, ``speedups``, decides per device for every
model, and ``bfloat16_pays`` per CPU from its flags; both are pure functions, so their tables are
tested on a CPU-only machine. They follow
TensorFlow's guides and this project's measurements:
- "Mixed precision" (tensorflow.org/guide/mixed_precision): the ``mixed_float16`` policy with
  loss scaling speeds up GPUs of compute capability 7.0 or higher (Tensor Cores); on a CPU
  float16 is emulated and only slows training down.
- "XLA" (tensorflow.org/xla): ``tf.function(jit_compile=True)`` fuses a step's many small
  kernels, which pays off on a GPU. On a CPU it was measured (benchmarks/step_speed.py, DCGAN
  step, batch 64): 1.3x faster than TensorFlow's own kernels, but 0.87x of oneDNN's, because
  XLA's CPU compiler emits its own convolutions. gan_tf turns oneDNN on for x86 CPUs
  (gan_tf/__init__.py), so on most CPUs XLA stays off.
- bfloat16 compute (Keras' ``mixed_bfloat16`` policy) on a CPU whose flags include
  ``avx512_bf16`` or ``amx_bf16``, where oneDNN runs it on the CPU's own bfloat16 units:
  measured on an AMD EPYC with AVX-512 BF16 (benchmarks/dcgan_levers.py), the DCGAN step ran
  1.47x faster at batch 64 and reached float32's cFID after 4 epochs as well (``bfloat16_pays``).
A setting left at None in ``TrainConfig`` (``mixed_precision``, ``bfloat16``, ``jit_compile``) is
what this module chooses for this machine (``resolve``); ``--xla`` / ``--mixed-precision`` /
``--bfloat16`` and their ``--no-`` forms override it.
"""

import copy
import os
import warnings

import tensorflow as tf

import gan_tf

TENSOR_CORES = (7, 0)  # compute capability from which float16 math is fast
BF16_UNITS = {"avx512_bf16", "amx_bf16"}  # lscpu flags of CPUs with bfloat16 arithmetic
SPEEDUPS = ("mixed_precision", "bfloat16", "jit_compile")  # the TrainConfig settings chosen here


def speedups(device, compute_capabilities=(), onednn=False):
    """{'mixed_precision', 'jit_compile'} for a 'GPU' (the capabilities of every GPU used) or a
    'CPU' (whether TensorFlow runs oneDNN's kernels)."""
    if device == "GPU":
        tensor_cores = bool(compute_capabilities) and min(compute_capabilities) >= TENSOR_CORES
        return {"mixed_precision": tensor_cores, "jit_compile": True}
    return {"mixed_precision": False, "jit_compile": not onednn}


def choose_settings(gpus, onednn=None):
    """Settings for a list of visible GPUs, each a dict with 'compute_capability' (major, minor).

    Returns {'device', 'mixed_precision', 'jit_compile', 'schedule'} (``speedups``); schedule is
    'full' on a GPU and 'reduced' on a CPU, where the full schedule would take hours.
    """
    if not gpus:
        onednn = onednn_enabled() if onednn is None else onednn
        return {"device": "CPU", **speedups("CPU", onednn=onednn), "schedule": "reduced"}
    capabilities = [tuple(g.get("compute_capability") or (0, 0)) for g in gpus]
    return {"device": "GPU", **speedups("GPU", capabilities), "schedule": "full"}


def visible_gpus():
    """This machine's GPUs, described as ``choose_settings`` expects."""
    return [tf.config.experimental.get_device_details(gpu)
            for gpu in tf.config.list_physical_devices("GPU")]


def detect():
    """The settings for this machine."""
    return choose_settings(visible_gpus())


def resolve(config):
    """A copy of a TrainConfig with the speed-ups it leaves to the machine (None) chosen. Under a
    tf.distribute strategy XLA stays off (gan_tf.distribute; a TPU compiles everything itself)."""
    chosen = detect()
    if config.strategy != "default":
        chosen["jit_compile"] = False
    chosen["bfloat16"] = chosen["device"] == "CPU" and bfloat16_pays(cpu_flags(), onednn_enabled())
    resolved = copy.copy(config)  # not dataclasses.replace: that would fill a saved None from the recipe
    for key in SPEEDUPS:
        if getattr(config, key) is None:
            setattr(resolved, key, chosen[key])
    return resolved


def cpu_flags():
    """The x86 feature flags of this machine's CPU (empty where /proc/cpuinfo does not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def bfloat16_pays(flags, onednn):
    """Whether bfloat16 compute speeds up training on a CPU with these flags: only where oneDNN runs
    it on the CPU's own bfloat16 units (AVX-512 BF16 or AMX); elsewhere it is emulated and slower."""
    return onednn and bool(BF16_UNITS & set(flags))


def onednn_enabled():
    """Whether TensorFlow runs CPU operations with oneDNN's kernels (fixed when it was imported)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # what TensorFlow's own tests ask

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow without that hook: trust the setting
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


def xla_pays_off(device, onednn):
    """Whether XLA pays off for a step on this kind of device (``speedups``)."""
    return speedups(device, onednn=onednn)["jit_compile"]


def jit_compile_for(setting):
    """The XLA setting a step runs with: TrainConfig.jit_compile, or for None what ``speedups``
    chooses on this machine."""
    return detect()["jit_compile"] if setting is None else setting


def import_order_advice(tensorflow_first, x86, onednn, user_setting):
    """Why this process is slower than it could be, or None: TensorFlow was imported before
    gan_tf on an x86 CPU where TensorFlow does not turn oneDNN on by itself (no AVX-512 VNNI,
    AVX-VNNI or AMX), and the user did not choose the kernels."""
    if tensorflow_first and x86 and not onednn and user_setting is None:
        return ("TensorFlow was imported before gan_tf, so it runs its own CPU kernels; on this CPU "
                "oneDNN's made the DCGAN step about 1.4x faster. Import gan_tf first (in a notebook: "
                "restart the kernel and make `import gan_tf` the first import), or set "
                "TF_ENABLE_ONEDNN_OPTS=1 before starting Python.")
    return None


_advice = import_order_advice(gan_tf.TENSORFLOW_IMPORTED_FIRST, gan_tf.X86, onednn_enabled(),
                              gan_tf.ONEDNN_USER_SETTING)
if _advice:  # module code runs once per process: one warning
    warnings.warn(_advice, stacklevel=2)
