"""Training helpers: fit with the callbacks a learner needs, devices, metrics files.

Introduced in lesson 3 (`03_cnn_from_scratch`) and used by lessons 4 and 5.
"""

import dataclasses
import datetime
import json
import math
import pathlib
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from utils import paths

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
    """Records each epoch's wall-clock seconds and training steps in the logs (`seconds`, `steps`)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        logs["seconds"], logs["steps"] = time.perf_counter() - self.start, self.steps


class TimeLimit(keras.callbacks.Callback):
    """Stops training before the next epoch would end past `seconds` in total."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.start
        if elapsed + elapsed / (epoch + 1) > self.seconds:  # elapsed / (epoch + 1): the average epoch
            self.model.stop_training = True


class TimeBudgetSchedule(keras.callbacks.Callback):
    """Warm-up, then cosine decay of the learning rate, planned over a time budget (lesson 3).

    A schedule planned in epochs is cut off at a high learning rate when a
    time limit stops training first. This one measures progress as the
    larger of the time used and the steps taken (out of `seconds` and
    `epochs`), so whichever runs out first, the learning rate has decayed to
    `final_fraction` of its peak when training stops. Training stops (in the
    middle of an epoch if need be; Keras still validates that epoch) once
    progress reaches 1. Each epoch's last learning rate goes into the logs as
    `learning_rate`, so `TrainingRun.history` holds the schedule as it ran.

    Args:
        peak_learning_rate: the learning rate after the warm-up.
        seconds: the time budget for training, validation included.
        epochs: the most epochs; with `steps_per_epoch`, the step budget.
        steps_per_epoch: training batches per epoch.
        warmup_fraction: share of the budget spent rising from a tenth of
            the peak to the peak.
        final_fraction: the learning rate at the end, as a share of the peak.
    """

    def __init__(self, peak_learning_rate, seconds, epochs, steps_per_epoch, warmup_fraction=0.05,
                 final_fraction=0.0):
        super().__init__()
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds={seconds}: give the time budget in seconds (more than 0), or None.")
        if not 0 <= warmup_fraction < 1:
            raise ValueError(f"warmup_fraction={warmup_fraction}: use a share between 0 and 1.")
        self.peak_learning_rate, self.seconds = peak_learning_rate, seconds
        self.total_steps = max(1, epochs * steps_per_epoch)
        self.warmup_fraction, self.final_fraction = warmup_fraction, final_fraction

    def learning_rate(self, progress):
        """The learning rate at `progress` (0 at the start, 1 at the end of the budget)."""
        progress = min(max(progress, 0.0), 1.0)
        if progress < self.warmup_fraction:
            return self.peak_learning_rate * (0.1 + 0.9 * progress / self.warmup_fraction)
        decay = (progress - self.warmup_fraction) / (1 - self.warmup_fraction)
        final = self.final_fraction * self.peak_learning_rate
        return final + (self.peak_learning_rate - final) * 0.5 * (1 + math.cos(math.pi * decay))

    def progress(self):
        """The share of the budget used: time or steps, whichever is further along."""
        by_time = (time.perf_counter() - self.start) / self.seconds if self.seconds else 0.0
        return max(by_time, self.steps / self.total_steps)

    def on_train_begin(self, logs=None):
        self.start, self.steps, self.stopped_by_time = time.perf_counter(), 0, False

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.learning_rate(self.progress()))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.progress() >= 1:
            self.stopped_by_time = self.steps < self.total_steps
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def fit(model, train_ds, valid_ds, epochs, model_dir=None, patience=5, monitor="val_loss",
        time_limit=None, verbose="auto", callbacks=()):
    """Trains a compiled model with early stopping, a checkpoint and a CSV log (lesson 3).

    Training stops when `monitor` has not improved for `patience` epochs and the
    weights of the best epoch are restored, so the model returned is the best
    one seen, not the last. With `patience=None` it trains to the end (or
    until a callback such as `TimeBudgetSchedule` stops it) and keeps the
    last weights.

    Args:
        model: a compiled Keras model.
        train_ds: batched training dataset of (images, labels).
        valid_ds: batched validation dataset.
        epochs: the most epochs to train.
        model_dir: folder for `model.keras` (the model `fit` returns: with
            early stopping the best so far, without it the latest) and
            `training_log.csv` (one row per epoch); None keeps nothing on disk.
        patience: epochs without improvement before stopping; None: no early stopping.
        monitor: the validation figure that decides "best".
        time_limit: seconds; training stops after the last epoch that fits
            (judged by the average epoch so far). None: no limit.
        verbose: Keras' progress display: "auto", 1 (a bar per epoch), 2 (a line).
        callbacks: extra Keras callbacks.

    Returns a `TrainingRun`. Raises RuntimeError when the GPU runs out of
    memory, with a message that says what to change.
    """
    mode = "max" if "acc" in monitor else "min"
    callbacks = [EpochTimer(), *callbacks]
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                                       restore_best_weights=True))
    if time_limit is not None:
        callbacks.append(TimeLimit(time_limit))
    checkpoint = None if model_dir is None else pathlib.Path(model_dir) / "model.keras"
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        callbacks += [keras.callbacks.ModelCheckpoint(checkpoint, monitor=monitor, mode=mode,
                                                      save_best_only=patience is not None),
                      keras.callbacks.CSVLogger(checkpoint.parent / "training_log.csv")]
    batch_size = getattr(train_ds, "batch_size", None)
    start = time.perf_counter()
    try:
        # shuffle=False: a tf.data dataset shuffles itself (see utils.pipeline);
        # Keras' own shuffling only applies to NumPy arrays.
        history = model.fit(train_ds, validation_data=valid_ds, epochs=epochs,
                            callbacks=callbacks, verbose=verbose, shuffle=False)
    except tf.errors.ResourceExhaustedError as error:
        half = max(1, batch_size // 2) if batch_size else "half its value"
        raise RuntimeError(OUT_OF_MEMORY_ADVICE.format(half=half)) from error
    seconds = time.perf_counter() - start
    values = {name: [float(value) for value in series] for name, series in history.history.items()}
    best_epoch = int((np.argmax if mode == "max" else np.argmin)(values[monitor])) + 1
    per_epoch = getattr(train_ds, "num_images", None) or sum(int(tf.shape(x)[0]) for x, _ in train_ds)
    images = sum(min(per_epoch, steps * batch_size) if batch_size else per_epoch
                 for steps in values["steps"])  # the last epoch may have stopped early
    return TrainingRun(values, len(values["loss"]), seconds, images / seconds, best_epoch, checkpoint)


def devices():
    """Names the devices TensorFlow will use, e.g. ["GPU 0: NVIDIA T4"] or ["CPU"]."""
    details = tf.config.experimental.get_device_details
    return [f"GPU {index}: {details(gpu).get('device_name', gpu.name)}"
            for index, gpu in enumerate(tf.config.list_physical_devices("GPU"))] or ["CPU"]


def write_metrics(path, **figures):
    """Records a lesson's run in a JSON file, with versions, device and date, and returns the dict written.

    Args:
        path: the file, usually `models/<lesson>/metrics.json`.
        **figures: what the lesson measured (counts, accuracies, seconds, ...);
            NumPy numbers and paths are converted.
    """
    def plain(value):
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, np.generic):
            return value.item()
        return str(value) if isinstance(value, pathlib.Path) else value

    record = plain(figures) | {
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "device": devices(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paths.write_text(path, json.dumps(record, indent=2) + "\n")
    return record
