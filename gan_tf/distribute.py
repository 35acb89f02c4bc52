"""Training on more than one device with TensorFlow's tf.distribute (README: "Training on more
than one device"; notebooks/03_wgan_gp.ipynb mentions it).

``--strategy`` picks one of TensorFlow's strategies; gan_tf's loop stays the same:
- ``mirrored``: one machine, every GPU (or, without one, every logical CPU device), one replica
  of each network per device, gradients summed across them after every step;
- ``multi-worker``: the same over several machines, each running the same command, told about
  the others by the TF_CONFIG environment variable (the standard way);
- ``tpu``: a Cloud TPU (e.g. Colab's), found by TPUClusterResolver;
- ``default``: one device, no strategy at all (today's path, unchanged).

What changes under a strategy, and why:
- The state (networks, optimizers, noise generator) is created in ``strategy.scope()``, so every
  variable is mirrored: one copy per replica, kept equal by the optimizers' all-reduce.
- Each global batch (``--batch-size``) is split evenly across the replicas.
- Each replica scales its losses by 1 / number of replicas before taking gradients
  (``replica_share``): the optimizer *sums* the replicas' gradients, and a replica's mean over its
  share of the batch divided by the number of replicas is exactly its part of the global batch's
  mean, ``tf.nn.compute_average_loss``. The reported losses are averaged across replicas.
- BatchNorm (in G) is synchronised: its batch statistics are those of the global batch, so a
  run's numbers do not depend on how many devices share a batch.
- Noise: a replica draws every random tensor for the *global* batch from a seed shared by all
  replicas and keeps its own rows (``ReplicaNoise``), so 1 and 2 replicas see the same noise.
  Keras' Dropout draws its masks per replica (each replica the same mask pattern for its rows).
- Only the chief (worker 0) writes the run directory; the other workers save their checkpoints
  to a temporary folder (TensorFlow's multi-worker guide: every worker must take part in saving).
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

from .config import CPU_DEVICES_ENV, ConfigError


def split_cpu(n):
    """Make the CPU appear as ``n`` logical devices, so a mirrored strategy can be tried without
    GPUs (the replicas then share the same cores: a correctness check, not a speed-up). Must run
    before TensorFlow first uses a device."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise ConfigError(f"${CPU_DEVICES_ENV}={n} came too late: TensorFlow was already running in "
                          "this process. Set it before starting Python (or restart the notebook's kernel)."
                          ) from None


def mirrored_devices(gpus, cpus):
    """The devices a mirrored strategy replicates over: every GPU, else every logical CPU."""
    return list(gpus) if gpus else list(cpus)


def is_chief(task_type, task_id, cluster_spec):
    """Whether this worker writes the run directory: the task named 'chief', or worker 0 of a
    cluster without one (TensorFlow's convention); a single process always does."""
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in (cluster_spec or {})


def per_replica_batch(batch_size, replicas):
    """The batch each replica trains on; the global batch must split evenly."""
    if batch_size % replicas:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly across {replicas} replicas; "
                          f"use a multiple of {replicas}")
    return batch_size // replicas


def make_strategy(name):
    """The tf.distribute strategy called ``name`` (config.STRATEGIES), or None for 'default'.

    Create it before anything else touches TensorFlow's devices: a multi-worker strategy starts
    its server and a logical-CPU split only works before the first operation.
    """
    if name == "default":
        return None
    if os.environ.get(CPU_DEVICES_ENV):
        split_cpu(int(os.environ[CPU_DEVICES_ENV]))
    if name == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(mirrored_devices(gpus, cpus))
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multi-worker needs TF_CONFIG, which tells each worker the cluster "
                              "and its own place in it (README: 'Training on more than one device')")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ConfigError(f"TF_CONFIG is not valid JSON ({e})") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    # TPU: connect, initialise, replicate (tensorflow.org/guide/tpu).
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        raise ConfigError(f"--strategy tpu found no TPU ({why}); on Colab choose a TPU runtime, "
                          "elsewhere use mirrored or default") from None
    return tf.distribute.TPUStrategy(resolver)


def describe(strategy, name, batch_size):
    """One line for the log: the replicas and the batch each one trains on."""
    replicas = strategy.num_replicas_in_sync
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    where = f" on {workers} workers" if workers > 1 else ""
    return (f"{name} strategy: {replicas} replica{'s' * (replicas > 1)}{where}, global batch {batch_size} "
            f"= {replicas} x {per_replica_batch(batch_size, replicas)} per replica")


def chief(strategy):
    """Whether this process writes the run directory (``is_chief`` for this worker)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy else None
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return is_chief(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def worker_folder(strategy):
    """Where a non-chief worker saves its (discarded) checkpoints: a fresh temporary folder,
    removed by ``finish``."""
    return tempfile.mkdtemp(prefix=f"gan_tf-worker{strategy.cluster_resolver.task_id}-")


def finish(strategy, folder=None):
    """The end of a run on several workers: wait until every worker (the chief writing its last
    files) gets here, so none exits while the others still talk to it; remove ``folder``."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        barrier = tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM,
                                                      strategy.run(lambda: tf.constant(1.0)), axis=None))
        barrier()
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def replica_share():
    """1 / the number of replicas in sync: the factor each replica's mean loss is scaled by before
    its gradients are summed across replicas (1 outside a strategy)."""
    context = tf.distribute.get_replica_context()
    return 1 / context.num_replicas_in_sync if context else 1


class ReplicaNoise:
    """The random draws of one replica, with ``tf.random.Generator``'s ``normal`` and ``uniform``.

    Every draw is made for the global batch (this replica's rows times the number of replicas)
    from a seed that all replicas share, and the replica keeps its own rows: replica r of R gets
    rows r*b ... (r+1)*b - 1 of what one device drawing for the whole batch would get. So a run
    on 2 replicas draws the same noise as on 1, whatever the batch split.
    """

    def __init__(self, seed):
        context = tf.distribute.get_replica_context()
        self.replica, self.replicas = context.replica_id_in_sync_group, context.num_replicas_in_sync
        self.seed, self.draws = seed, 0

    def _rows(self, draw, shape, **options):
        rows, rest = shape[0], list(shape[1:])
        self.draws += 1  # each draw in the traced step gets its own stream
        seed = tf.random.experimental.stateless_fold_in(self.seed, self.draws)
        every = draw([rows * self.replicas, *rest], seed=seed, **options)
        return every[self.replica * rows:(self.replica + 1) * rows]

    def normal(self, shape):
        return self._rows(tf.random.stateless_normal, shape)

    def uniform(self, shape, minval=0, maxval=None, dtype=tf.float32):
        return self._rows(tf.random.stateless_uniform, shape, minval=minval, maxval=maxval, dtype=dtype)


def distribute_batches(strategy, batches):
    """Split each global batch of a tf.data pipeline across the replicas (and, on several
    workers, give each worker its replicas' rows of every batch)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(batches.with_options(options))


def critic_rows_by_replica(images, n_critic, replicas):
    """Reorder a WGAN step's n_critic stacked batches so that, once the global batch is cut into
    ``replicas`` consecutive parts, critic update i on every replica sees its part of batch i (the
    rows one device would use for update i)."""
    if replicas == 1:
        return images
    shape = tf.shape(images)
    per = shape[0] // (n_critic * replicas)
    grouped = tf.reshape(images, tf.concat([[n_critic, replicas, per], shape[1:]], 0))
    order = tf.concat([[1, 0], tf.range(2, tf.rank(grouped))], 0)
    return tf.reshape(tf.transpose(grouped, order), shape)
