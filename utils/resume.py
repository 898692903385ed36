"""Crash-safe resume of a training run (lesson 3).

`training.fit` given a `model_dir` backs the training up at the end of each
epoch with `Resume` (Keras' `BackupAndRestore`, in `model_dir/backup/`), and
the same call run again after an interruption (Ctrl-C, a killed process, a
reclaimed spot machine) carries on from the last finished epoch, with the
other callbacks' state (early stopping, the time limit, the time-budget
schedule) where it was. `runs.start(..., resume_key=...)` finds the
interrupted run's folder again with `hold`, and names the epoch it resumes
from with `backed_up_epochs`.
"""

import contextlib
import fcntl
import json
import pathlib
import time

import keras
import numpy as np

from utils import hardware, safely

KERAS_STATE = {keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
               keras.callbacks.ModelCheckpoint: ("best",)}  # what `Resume` carries of Keras' own callbacks

STARTED = "started.json"  # in a run's folder: what `runs.start` writes when given a resume key; `hold` locks it
_held = {}  # run folder -> its open, locked `started.json`: this process trains in it


class Resume(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` that also carries the other callbacks' state and the history (lesson 3).

    At the end of each epoch it writes into `backup_dir` the weights (the
    optimizer's too), the state of `carried` (a callback's `get_state()`, or
    early stopping's and checkpointing's best so far) and the history, and
    only then names them in `training_metadata.json`, replaced whole: a
    process killed at any moment leaves the last whole backup. Put it after
    the callbacks it carries: it restores them after their `on_train_begin`.

    Args:
        backup_dir: a folder for this training alone.
        carried: the callbacks whose state to carry over an interruption.
    """

    def __init__(self, backup_dir, carried=()):
        super().__init__(str(backup_dir))
        self.carried, self.earlier = list(carried), {"history": {}, "seconds": 0.0}

    def record(self):
        """The backup's record (`epoch`: the epochs it holds; `stopped`: training had ended), or None."""
        try:
            return json.loads(pathlib.Path(self._training_metadata_path).read_text())
        except (OSError, ValueError):
            return None

    def on_train_begin(self, logs=None):
        self.started, self.history = time.perf_counter(), {}
        super().on_train_begin(logs)  # calls _load_model

    def _load_model(self):
        record, folder = self.record(), pathlib.Path(self.backup_dir)
        if record is None:
            return
        saved = [entry["class"] for entry in record["callbacks"]]
        if saved != [_kind(callback) for callback in self.carried]:
            raise ValueError(f"the backup in {folder} was made by a training with other callbacks "
                             f"({', '.join(saved)}): run it with the same ones to resume, or move {folder} "
                             "away to start again.")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(folder / record["weights"])
        with np.load(folder / record["arrays"]) as arrays:
            for index, (callback, entry) in enumerate(zip(self.carried, record["callbacks"])):
                _set_state(callback, entry["state"], [arrays[f"{index}_{j}"] for j in range(entry["arrays"])])
        self.earlier = {"history": record["history"], "seconds": record["seconds"]}
        self.model._initial_epoch = self.params["epochs"] if record["stopped"] else record["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        super().on_epoch_end(epoch, logs)  # calls _save_model

    def _save_model(self):
        if not hardware.is_chief():  # with several machines, one writes
            return
        folder, epoch = pathlib.Path(self.backup_dir), self._current_epoch
        folder.mkdir(parents=True, exist_ok=True)
        names = {"weights": f"epoch-{epoch}.weights.h5", "arrays": f"epoch-{epoch}.state.npz"}
        self.model.save_weights(folder / names["weights"], overwrite=True)
        entries, arrays = [], {}
        for index, callback in enumerate(self.carried):
            state, weights = _get_state(callback)
            arrays.update({f"{index}_{j}": weight for j, weight in enumerate(weights)})
            entries.append({"class": _kind(callback), "state": state, "arrays": len(weights)})
        np.savez(folder / names["arrays"], **arrays)
        earlier = self.earlier["history"]
        history = {name: earlier.get(name, []) + self.history.get(name, []) for name in {**earlier, **self.history}}
        record = {"epoch": epoch, "batch": 0, **names, "callbacks": entries, "history": history,
                  "seconds": self.earlier["seconds"] + time.perf_counter() - self.started,
                  "stopped": bool(self.model.stop_training)}
        safely.write_text(pathlib.Path(self._training_metadata_path), json.dumps(record) + "\n")
        for stale in folder.glob("epoch-*"):
            if stale.name not in names.values():
                stale.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # Keras keeps it, and would start the model's next fit there
        if hardware.is_chief():
            super().on_train_end(logs)  # deletes the backup


def _kind(callback):
    """The name a backup records for a callback: training's whole-file checkpoint is Keras' `ModelCheckpoint`, as
    kits before it recorded, so that a training stopped before an update resumes after it."""
    return "ModelCheckpoint" if isinstance(callback, keras.callbacks.ModelCheckpoint) else type(callback).__name__


def _get_state(callback):
    """A callback's state to carry: (a dict for JSON, a list of arrays)."""
    if hasattr(callback, "get_state"):
        return callback.get_state(), []
    for kind, names in KERAS_STATE.items():
        if isinstance(callback, kind):
            state = {name: getattr(callback, name) for name in names}
            state = {name: value if value is None or isinstance(value, int) else float(value)
                     for name, value in state.items()}
            return state, list(getattr(callback, "best_weights", None) or [])
    return {}, []


def _set_state(callback, state, arrays):
    if hasattr(callback, "set_state"):
        callback.set_state(state)
        return
    for name, value in state.items():
        setattr(callback, name, value)
    if isinstance(callback, keras.callbacks.EarlyStopping):
        callback.best_weights = arrays or None


def keep_log_rows(log, epochs):
    """Cuts `training_log.csv` back to its first `epochs` rows: an epoch the backup lacks is trained again."""
    if log.is_file():
        header, *rows = log.read_text().splitlines(keepends=True)
        safely.write_text(log, header + "".join(row for row in rows if int(row.split(",")[0]) < epochs))


def hold(folder, resume_key):
    """Whether `folder` was started with `resume_key` (its `started.json`) and no other live process holds it;
    if so this process now holds it (a lock on `started.json`, released when the process ends)."""
    try:
        handle = open(folder / STARTED)
    except OSError:
        return False  # not started with a resume key
    try:
        same = json.load(handle).get("resume_key") == resume_key
        if same and folder in _held:  # this process started it: a notebook cell run again
            handle.close()
            return True
        if same:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (OSError, ValueError, AttributeError):  # damaged, or another process trains in it
        same = False
    if not same:
        handle.close()
        return False
    _held[folder] = handle
    return True


def backed_up_epochs(folder):
    """' from epoch N' for each backup `training.fit` left in `folder`, or a note that none was left."""
    found = []
    for record in sorted(folder.glob("**/backup/training_metadata.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            where = record.parent.parent.relative_to(folder).as_posix()
            found.append(f"epoch {json.loads(record.read_text())['epoch'] + 1}"
                         + ("" if where == "." else f" (in {where})"))
    return f" from {', '.join(found)}" if found else " (no epoch was backed up: its training starts again)"
