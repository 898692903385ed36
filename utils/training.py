"""Training helpers (lesson 3, used by lessons 4 to 6): fit with callbacks and resuming, devices, metrics files."""

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from utils import hardware as hardware_module, resume, runs, safely  # `fit` has an argument named `hardware`


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

    def get_state(self):
        """What `resume.Resume` carries over an interruption: the seconds used so far."""
        return {"elapsed": time.perf_counter() - self.start}

    def set_state(self, state):
        self.start = time.perf_counter() - state["elapsed"]

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.start
        if elapsed + elapsed / (epoch + 1) > self.seconds:  # elapsed / (epoch + 1): the average epoch
            self.model.stop_training = True


class WholeCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras' `ModelCheckpoint`, written whole: Keras writes the file in place, so a Ctrl-C or a full disk while it
    saves would spoil the best model so far; this one saves a hidden copy first and renames it over the last."""

    def _get_file_path(self, epoch, batch, logs):
        path = pathlib.Path(self.filepath)
        return str(path.with_name(f".{path.stem}.part{path.suffix}"))

    def _save_model(self, epoch, batch, logs):
        partial = pathlib.Path(self._get_file_path(epoch, batch, logs))
        partial.unlink(missing_ok=True)
        try:
            super()._save_model(epoch, batch, logs)
            if partial.exists():  # saved: the best epoch so far
                os.replace(partial, self.filepath)
        finally:
            partial.unlink(missing_ok=True)


def fit(model, train_ds, valid_ds, epochs, model_dir=None, patience=5, time_limit=None, verbose="auto",
        callbacks=(), hardware=None):
    """Trains a compiled model with early stopping, a checkpoint, a CSV log and a backup (lesson 3).

    Args:
        model: a compiled Keras model, whose outputs must be float32.
        train_ds: batched training dataset of (images, labels); `valid_ds` likewise.
        epochs: the most epochs to train.
        model_dir: folder for `model.keras` (the model returned), `training_log.csv` and, while it trains,
            `backup/`: the same call run again after an interruption resumes from the last finished epoch.
            None keeps nothing on disk.
        patience: epochs without a lower validation loss (the best epoch's) before stopping and restoring the
            best epoch's weights; None: no early stopping, the last weights are kept.
        time_limit: seconds; training stops after the last epoch that fits (judged by the average epoch).
        callbacks: extra Keras callbacks; with a `model_dir` their state (`get_state()`) is backed up too.
        hardware: the `utils.hardware.Hardware` the model was built for, printed in one line.

    Returns:
        A `TrainingRun`.

    Refuses (ValueError) a model that has trained already with no backup to resume from (a cell run again) and a
    `model_dir` in a finished run's folder; running out of GPU memory or Ctrl-C end in one line saying what to do.
    """
    if epochs < 1:  # else Keras trains nothing, and the best epoch's lookup fails on an empty history
        raise ValueError(f"epochs = {epochs}: train for 1 epoch or more (the lesson's EPOCHS, SAMPLE_EPOCHS or "
                         "HEAD_EPOCHS parameter).")
    hardware_module.check_output_float32(model)
    optimizer = getattr(model, "optimizer", None)  # its steps: a mirrored variable under a distribution strategy
    trained = int(keras.ops.convert_to_numpy(optimizer.iterations)) if optimizer is not None else 0
    if hardware is not None and verbose != 0:
        print("Training on", hardware)
    callbacks = [EpochTimer(), *callbacks]
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True))
    if time_limit is not None:
        callbacks.append(TimeLimit(time_limit))
    checkpoint = backup = None
    record = {"epoch": 0}
    if model_dir is not None:
        runs.check_unfinished(pathlib.Path(model_dir))
        checkpoint = pathlib.Path(model_dir) / "model.keras"
        backup = resume.Resume(checkpoint.parent / "backup")
        record, log = backup.record() or record, checkpoint.parent / "training_log.csv"
    if trained and not record["epoch"]:  # else the backup's weights replace these
        raise ValueError(f"the model {model.name!r} has already trained {trained} steps in this session, and no "
                         "backup of them is there to resume from: run the cell that builds and compiles it again "
                         "first, so that this training starts from fresh weights (and is measured as one).")
    if model_dir is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if record["epoch"]:
            resume.keep_log_rows(log, record["epoch"])
            print(f"resuming training from epoch {record['epoch'] + 1} (backup in {backup.backup_dir})"
                  if not record["stopped"] else f"training had ended after epoch {record['epoch']}: finishing it")
        callbacks += [WholeCheckpoint(checkpoint, save_best_only=patience is not None),
                      keras.callbacks.CSVLogger(log, append=bool(record["epoch"]))]
        backup.carried = list(callbacks)
        callbacks.append(backup)  # last: it backs up the others' state after their epoch ends
    batch_size = getattr(train_ds, "batch_size", None)
    start = time.perf_counter()
    try:
        if hardware_module.on_several_machines(model):  # where Keras 3's `fit` cannot train
            history = hardware_module.fit_on_workers(model, train_ds, valid_ds, epochs, callbacks, verbose)
        else:  # shuffle=False: a tf.data dataset shuffles itself (see utils.pipeline); Keras' is for NumPy arrays.
            history = model.fit(train_ds, validation_data=valid_ds, epochs=epochs, callbacks=callbacks,
                                verbose=verbose, shuffle=False)
    except tf.errors.ResourceExhaustedError as error:
        half = max(1, batch_size // 2) if batch_size else "half its value"
        raise RuntimeError(f"The GPU ran out of memory while training. Lower BATCH_SIZE (for example to {half}), or "
                           "the image size where the lesson has one (IMAGE_SIZE, SAMPLE_IMAGE_SIZE), in its Parameters "
                           "cell, restart the kernel and run again. Other notebooks still open on the same GPU also "
                           "hold memory: shut their kernels down.") from error
    except KeyboardInterrupt:  # one line, not TensorFlow's hundreds
        done = (backup.record() or {"epoch": 0})["epoch"] if backup is not None else 0
        raise KeyboardInterrupt(
            f"training stopped in epoch {done + 1}: the model in memory is part-trained. Run this cell again to "
            f"resume from epoch {done + 1} (the backup in {backup.backup_dir})" if done else
            "training stopped before an epoch was backed up: the model in memory is part-trained. Run the cell "
            "that builds and compiles it again, then this one, to train it afresh") from None
    earlier = backup.earlier if backup is not None else {"history": {}, "seconds": 0.0}  # before an interruption
    seconds = earlier["seconds"] + time.perf_counter() - start
    values = {name: earlier["history"].get(name, []) + [float(value) for value in history.history.get(name, [])]
              for name in {**earlier["history"], **history.history}}
    best_epoch = int(np.argmin(values["val_loss"])) + 1
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
        path: the file, usually the run's own `metrics.json` (`runs.finish` copies a full run's to `models/<lesson>/`).
        **figures: what the lesson measured; NumPy numbers and paths are converted.
    """
    def plain(value):  # what json cannot write by itself; anything else: json's own TypeError, as before
        if isinstance(value, (np.generic, pathlib.PurePath)):
            return value.item() if isinstance(value, np.generic) else str(value)
        return json.JSONEncoder().default(value)

    runs.check_unfinished(pathlib.Path(path).parent)
    record = figures | {
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "device": devices(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    text = json.dumps(record, indent=2, default=plain)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    safely.write_text(path, text + "\n")
    return json.loads(text)
