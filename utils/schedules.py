"""A learning-rate schedule planned over a time budget, not a number of epochs (lesson 3)."""

import math
import time

import keras


class TimeBudgetSchedule(keras.callbacks.Callback):
    """Warm-up, then cosine decay of the learning rate, planned over a time budget (lesson 3).

    A schedule planned in epochs is cut off at a high learning rate when a
    time limit stops training first. This one measures progress as the
    larger of the time used and the steps taken (out of `seconds` and
    `epochs`), so whichever runs out first, the learning rate has decayed to
    0 when training stops. Training stops (in the
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
    """

    def __init__(self, peak_learning_rate, seconds, epochs, steps_per_epoch, warmup_fraction=0.05):
        super().__init__()
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds={seconds}: give the time budget in seconds (more than 0), or None.")
        if not 0 <= warmup_fraction < 1:
            raise ValueError(f"warmup_fraction={warmup_fraction}: use a share between 0 and 1.")
        self.peak_learning_rate, self.seconds = peak_learning_rate, seconds
        self.total_steps = max(1, epochs * steps_per_epoch)
        self.warmup_fraction = warmup_fraction

    def learning_rate(self, progress):
        """The learning rate at `progress` (0 at the start, 1 at the end of the budget)."""
        progress = min(max(progress, 0.0), 1.0)
        if progress < self.warmup_fraction:
            return self.peak_learning_rate * (0.1 + 0.9 * progress / self.warmup_fraction)
        decay = (progress - self.warmup_fraction) / (1 - self.warmup_fraction)
        return self.peak_learning_rate * 0.5 * (1 + math.cos(math.pi * decay))

    def progress(self):
        """The share of the budget used: time or steps, whichever is further along."""
        by_time = (time.perf_counter() - self.start) / self.seconds if self.seconds else 0.0
        return max(by_time, self.steps / self.total_steps)

    def on_train_begin(self, logs=None):
        self.start, self.steps, self.stopped_by_time = time.perf_counter(), 0, False

    def get_state(self):
        """What `resume.Resume` carries over an interruption: time used and steps taken, so the curve goes on."""
        return {"elapsed": time.perf_counter() - self.start, "steps": self.steps,
                "stopped_by_time": self.stopped_by_time}

    def set_state(self, state):
        self.start, self.steps = time.perf_counter() - state["elapsed"], state["steps"]
        self.stopped_by_time = state["stopped_by_time"]

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.learning_rate(self.progress()))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.progress() >= 1:
            self.stopped_by_time = self.steps < self.total_steps
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
