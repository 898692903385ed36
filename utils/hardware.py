"""One way to train on any hardware: the CPU, one GPU, several GPUs or several machines (lesson 3).

`detect` looks at the machine and returns a `Hardware`: the `tf.distribute`
strategy to build the model under, the number of replicas, whether to compute
in mixed precision and whether to compile with XLA. A lesson builds and
compiles its model inside `hw.scope()` and batches its data with
`hw.global_batch(BATCH_SIZE)`; the same notebook then runs unchanged on a
laptop, a GPU box or a cluster.

Mixed precision (`mixed_float16`) is chosen only for GPUs with compute
capability 7.0 or more, by the same rule as `python -m utils.doctor`. Under it
the model's last layer must still compute in float32 (give it
`dtype="float32"`); `check_output_float32` says so when it does not.

On several machines (`MultiWorkerMirroredStrategy`) Keras 3's `model.fit`
fails (keras-team/keras#20585): `training.fit` trains there with
`fit_on_workers`, the same steps and callbacks in a loop of its own. With
several GPUs or machines, a `BatchNormalization` layer keeps each copy's own
batch and moving statistics unless it is given `synchronized=True`, and the
saved model holds the first copy's.
"""

import contextlib
import dataclasses
import json
import os

import keras
import tensorflow as tf

from utils import doctor

PRECISIONS = ("float32", "mixed_float16")


@dataclasses.dataclass
class Hardware:
    """How a model trains here; what `detect` returns.

    Attributes:
        strategy: the `tf.distribute` strategy to build and compile the model under.
        precision: the Keras dtype policy, "float32" or "mixed_float16".
        xla: whether to compile with XLA: `model.compile(..., jit_compile=hw.xla)`.
        devices: what trains, in words, e.g. "1 GPU (NVIDIA T4, compute capability 7.5)" or "CPU".
    """

    strategy: tf.distribute.Strategy
    precision: str
    xla: bool
    devices: str

    @property
    def replicas(self):
        """How many copies of the model train in step: the strategy's `num_replicas_in_sync`."""
        return self.strategy.num_replicas_in_sync

    def global_batch(self, batch_size):
        """The batch the input pipeline should make so that each replica gets `batch_size` images."""
        return batch_size * self.replicas

    @contextlib.contextmanager
    def scope(self):
        """Builds a model on this hardware: enters the strategy's scope and sets the dtype policy, only inside
        the `with` block; the previous global policy is back afterwards, even after an error."""
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        try:
            with self.strategy.scope():
                yield self
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def describe(self):
        """One line, e.g. "1 GPU (NVIDIA T4, compute capability 7.5): mixed_float16, XLA on, 1 replica"."""
        replicas = f"{self.replicas} replica" + ("s" if self.replicas != 1 else "")
        return f"{self.devices}: {self.precision}, XLA {'on' if self.xla else 'off'}, {replicas}"

    __str__ = describe


def cluster():
    """The `TF_CONFIG` environment variable as a dict ({} when it is not set)."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): set it to "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}} '
                         "or unset it to train on this machine alone.") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster", {}), dict):
        raise ValueError("TF_CONFIG has no \"cluster\" of workers: set it to "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}} '
                         "or unset it to train on this machine alone.")
    return config


def worker_count():
    """How many machines `TF_CONFIG` names (its chief and workers); 1 without it."""
    machines = cluster().get("cluster", {})
    return max(1, len(machines.get("chief", [])) + len(machines.get("worker", [])))


def is_chief():
    """Whether this process writes shared files: the chief, else worker 0, else the only process."""
    config = cluster()
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("index", 0) == 0


def gpu_names(details):
    """Each GPU as "NAME, compute capability X.Y", from `tf.config.experimental.get_device_details`."""
    described = []
    for detail in details:
        capability = detail.get("compute_capability")
        described.append(detail.get("device_name", "GPU") + (
            ", compute capability {}.{}".format(*capability) if capability else ""))
    return described


def detect(mixed_precision="auto", xla="auto", gpus=None, details=None, devices=None):
    """Looks at the machine and returns the `Hardware` to train on (lesson 3).

    The strategy is `MultiWorkerMirroredStrategy` when `TF_CONFIG` names more
    than one machine, `MirroredStrategy` with more than one GPU (or `devices`),
    else the default strategy (the CPU or the one GPU).

    Args:
        mixed_precision: "auto" (mixed_float16 when every GPU has compute
            capability 7.0 or more, else float32), True (mixed_float16; a
            ValueError on a machine that gains nothing from it) or False.
        xla: whether to compile with XLA (`jit_compile`); "auto": on one GPU only, as Keras itself
            decides for `jit_compile="auto"` (XLA is slower on a CPU, and Keras leaves it off under a
            distribution strategy).
        gpus: the physical GPUs; None asks TensorFlow (tests pass fakes).
        details: a function giving a GPU's details (`device_name`,
            `compute_capability`); None: `tf.config.experimental.get_device_details`.
        devices: device names to mirror over, e.g. ["/cpu:0", "/cpu:1"]; None: every GPU.
    """
    if mixed_precision not in ("auto", True, False):
        raise ValueError(f"mixed_precision={mixed_precision!r}: use \"auto\", True or False.")
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else list(gpus)
    gpu_details = [(details or tf.config.experimental.get_device_details)(gpu) for gpu in gpus]
    verdict = doctor.check_mixed_precision(gpu_details)  # the doctor's rule: compute capability 7.0 or more
    if mixed_precision is True and verdict.status != "OK":
        raise ValueError(f"mixed_precision=True, but {verdict.detail}: use mixed_precision=\"auto\" "
                         "(float32 here) or a GPU with compute capability 7.0 or more.")
    precision = PRECISIONS[verdict.status == "OK" and mixed_precision is not False]
    names = gpu_names(gpu_details)
    where = (f"{len(names)} GPU{'s' if len(names) > 1 else ''} ({'; '.join(names)})" if names else "CPU")
    if worker_count() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task = cluster().get("task", {})
        where = (f"{worker_count()} machines (this one {task.get('type', 'worker')} {task.get('index', 0)}), "
                 f"each {where}")
    elif devices is not None and len(devices) > 1:
        strategy = tf.distribute.MirroredStrategy(list(devices))
        where = f"{len(devices)} devices ({', '.join(devices)})"
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([f"/gpu:{index}" for index in range(len(gpus))])
    else:
        strategy = tf.distribute.get_strategy()
    one_gpu = len(gpus) == 1 and strategy.num_replicas_in_sync == 1 and worker_count() == 1
    return Hardware(strategy, precision, one_gpu if xla == "auto" else bool(xla), where)


def check_output_float32(model):
    """Raises ValueError when an output of `model` is not float32 (under mixed precision the last layer needs
    `dtype="float32"`, or its softmax rounds in float16); returns the model."""
    try:
        outputs = model.outputs or []
    except (AttributeError, ValueError):  # a model not built yet: nothing to check
        outputs = []
    for output in outputs:
        dtype = keras.backend.standardize_dtype(output.dtype)
        if dtype != "float32":
            raise ValueError(f"the model's output {output.name} is {dtype}: under mixed precision give its last "
                             'layer dtype="float32" (for example keras.layers.Dense(2, activation="softmax", '
                             'dtype="float32")).')
    return model


def on_several_machines(model):
    """Whether `model` was built under `MultiWorkerMirroredStrategy`, which Keras 3's `model.fit` cannot train:
    its first step reduces the input batch, and every step the metrics, in ways only `MirroredStrategy` accepts
    (keras-team/keras#20585; `fit_on_workers` is the way round)."""
    return isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy)


def fit_on_workers(model, train_ds, valid_ds, epochs, callbacks=(), verbose="auto"):
    """`model.fit(train_ds, validation_data=valid_ds, ...)` for a model built under MultiWorkerMirroredStrategy.

    Each step runs `model.train_step` on this worker's share of the batch (`strategy.run`); the strategy adds
    the gradients up. The metrics are read once an epoch, summed over the workers, so every worker's callbacks
    see the same logs; a callback that stops training on one worker stops every worker after the same step.

    Returns the `keras.callbacks.History`, as `model.fit` does.
    """
    strategy = model.distribute_strategy
    train_step = tf.function(lambda batch: strategy.run(model.train_step, (batch,)))
    test_step = tf.function(lambda batch: strategy.run(model.test_step, (batch,)))

    @tf.function
    def stop_everywhere(stop):  # every worker must call it: it is a collective operation
        def vote(stop):  # tf.identity: a tensor made on this replica's device, where the reduction looks for it
            return tf.distribute.get_replica_context().all_reduce("sum", tf.identity(stop))
        votes = strategy.run(vote, (stop,))
        return strategy.experimental_local_results(votes)[0] > 0

    def stopped():
        model.stop_training = bool(stop_everywhere(tf.constant(float(model.stop_training))))
        return model.stop_training

    train_data, valid_data = (strategy.experimental_distribute_dataset(data) for data in (train_ds, valid_ds))
    callbacks = keras.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=verbose != 0,
                                             model=model, verbose=2 if verbose == "auto" else verbose,
                                             epochs=epochs, steps=None)
    model.stop_training, logs = False, {}
    callbacks.on_train_begin()
    for epoch in range(getattr(model, "_initial_epoch", None) or 0, epochs):  # set by a BackupAndRestore
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for step, batch in enumerate(train_data):
            callbacks.on_train_batch_begin(step)
            train_step(batch)
            callbacks.on_train_batch_end(step)
            if stopped():
                break
        logs = {name: float(value) for name, value in model.get_metrics_result().items()}
        model.reset_metrics()
        for batch in valid_data:
            test_step(batch)
        logs.update({f"val_{name}": float(value) for name, value in model.get_metrics_result().items()})
        callbacks.on_epoch_end(epoch, logs)
        if stopped():
            break
    callbacks.on_train_end(logs)
    return model.history
