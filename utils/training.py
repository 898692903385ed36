"""Training helpers: fit with the callbacks a learner needs, devices, metrics files.

Introduced in lesson 3 (`03_cnn_from_scratch`) and used by lessons 4 and 5.
"""

import dataclasses
import datetime
import json
import pathlib
import platform
import time

import keras
import numpy as np
import tensorflow as tf

OUT_OF_MEMORY_ADVICE = (
    "The GPU ran out of memory while training. Lower BATCH_SIZE (for example to {half}) "
    "or IMAGE_SIZE in the lesson's Parameters cell, restart the kernel and run again. "
    "Other notebooks still open on the same GPU also hold memory: shut their kernels down.")


@dataclasses.dataclass
class TrainingRun:
    """What `fit` returns: the history and how long it took."""

    history: dict
    epochs: int
    seconds: float
    images_per_second: float
    best_epoch: int
    checkpoint: pathlib.Path | None

    def best(self, metric):
        """The value of `metric` (e.g. "val_accuracy") at the best epoch."""
        return float(self.history[metric][self.best_epoch - 1])

    def final(self, metric):
        """The value of `metric` at the last epoch trained."""
        return float(self.history[metric][-1])


class EpochTimer(keras.callbacks.Callback):
    """Records the wall-clock seconds of every epoch in the logs as `seconds`."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


class TimeLimit(keras.callbacks.Callback):
    """Stops training before the next epoch would end past `seconds` in total."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.stopped_early = False

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.start
        if elapsed + elapsed / (epoch + 1) > self.seconds:
            self.model.stop_training = True
            self.stopped_early = True


def count_images(dataset):
    """Number of images in a batched dataset (its `num_images` attribute, else counted)."""
    if getattr(dataset, "num_images", None) is not None:
        return int(dataset.num_images)
    return sum(int(tf.shape(x)[0]) for x, _ in dataset)


def fit(model, train_ds, valid_ds, epochs, model_dir=None, patience=5, monitor="val_loss",
        time_limit=None, verbose="auto", callbacks=()):
    """Trains a compiled model with early stopping, a checkpoint and a CSV log (lesson 3).

    Training stops when `monitor` has not improved for `patience` epochs and the
    weights of the best epoch are restored, so the model returned is the best
    one seen, not the last.

    Args:
        model: a compiled Keras model.
        train_ds: batched training dataset of (images, labels).
        valid_ds: batched validation dataset.
        epochs: the most epochs to train.
        model_dir: folder for `best.keras` (the best model so far) and
            `training_log.csv` (one row per epoch); None keeps nothing on disk.
        patience: epochs without improvement before stopping.
        monitor: the validation figure that decides "best".
        time_limit: seconds; training stops after the last epoch that fits
            (judged by the average epoch so far). None: no limit.
        verbose: Keras' progress display: "auto", 1 (a bar per epoch), 2 (a line).
        callbacks: extra Keras callbacks.

    Returns:
        A `TrainingRun`.

    Raises:
        RuntimeError: the GPU ran out of memory; the message says what to change.
    """
    mode = "max" if "acc" in monitor else "min"
    callbacks = [EpochTimer(), *callbacks,
                 keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                               restore_best_weights=True)]
    if time_limit is not None:
        callbacks.append(TimeLimit(time_limit))
    checkpoint = None
    if model_dir is not None:
        model_dir = pathlib.Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = model_dir / "best.keras"
        callbacks += [keras.callbacks.ModelCheckpoint(checkpoint, monitor=monitor, mode=mode,
                                                      save_best_only=True),
                      keras.callbacks.CSVLogger(model_dir / "training_log.csv")]
    start = time.perf_counter()
    try:
        # shuffle=False: a tf.data dataset shuffles itself (see utils.pipeline);
        # Keras' own shuffling only applies to NumPy arrays.
        history = model.fit(train_ds, validation_data=valid_ds, epochs=epochs,
                            callbacks=callbacks, verbose=verbose, shuffle=False)
    except tf.errors.ResourceExhaustedError as error:
        batch_size = getattr(train_ds, "batch_size", None)
        half = max(1, batch_size // 2) if batch_size else "half its value"
        raise RuntimeError(OUT_OF_MEMORY_ADVICE.format(half=half)) from error
    seconds = time.perf_counter() - start
    values = {name: [float(value) for value in series] for name, series in history.history.items()}
    epochs_run = len(values["loss"])
    scores = np.array(values[monitor])
    best_epoch = int(np.argmax(scores) if mode == "max" else np.argmin(scores)) + 1
    images = count_images(train_ds) * epochs_run
    return TrainingRun(values, epochs_run, seconds, images / seconds, best_epoch, checkpoint)


def devices():
    """Names the devices TensorFlow will use, e.g. ["GPU 0: NVIDIA T4"] or ["CPU"]."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return ["CPU"]
    names = []
    for index, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(f"GPU {index}: {details.get('device_name', gpu.name)}")
    return names


def strategy(device_type="GPU", mixed_precision=True):
    """Chooses how to spread training over the hardware present (lesson 3).

    Several devices of `device_type` → `tf.distribute.MirroredStrategy` (each
    gets a slice of every batch); otherwise the default strategy. On a GPU
    that has tensor cores (compute capability 7.0 or newer), float16 mixed
    precision is switched on: about twice as fast, same accuracy. Build and
    compile the model inside `with strategy.scope():`.

    Args:
        device_type: "GPU"; tests pass "CPU" after splitting the CPU into
            logical devices.
        mixed_precision: allow mixed precision where the GPU supports it.

    Returns:
        A `tf.distribute.Strategy`.
    """
    logical = tf.config.list_logical_devices(device_type)
    if mixed_precision and device_type == "GPU" and logical:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0])
        if details.get("compute_capability", (0, 0)) >= (7, 0):
            keras.mixed_precision.set_global_policy("mixed_float16")
    if len(logical) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in logical])
    return tf.distribute.get_strategy()


def write_metrics(path, **figures):
    """Records a lesson's run in a JSON file, with versions, device and date.

    Args:
        path: the file, usually `models/<lesson>/metrics.json`.
        **figures: what the lesson measured (counts, accuracies, seconds, ...);
            NumPy numbers are converted.

    Returns:
        The dict written.
    """
    def plain(value):
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, pathlib.Path):
            return str(value)
        return value

    record = plain(figures)
    record["versions"] = {"python": platform.python_version(), "tensorflow": tf.__version__,
                          "keras": keras.__version__}
    record["device"] = devices()
    record["written"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
