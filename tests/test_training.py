"""utils.training: early stopping restores the best weights; files; devices; errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils import paths, training


def tiny_data(seed=0, count=64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def tiny_model(learning_rate=0.0):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class SpoilAfterFirstEpoch(keras.callbacks.Callback):
    """Keeps the weights after epoch 1, then adds noise so later epochs are worse."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.first_weights = [w.copy() for w in self.model.get_weights()]

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            rng = np.random.default_rng(epoch)
            self.model.set_weights([w + rng.normal(scale=5.0, size=w.shape)
                                    for w in self.model.get_weights()])


def test_fit_restores_best_weights_and_writes_checkpoint_and_log(tmp_path):
    keras.utils.set_random_seed(0)
    model, spoiler = tiny_model(), SpoilAfterFirstEpoch()
    train_ds, valid_ds = tiny_data(0), tiny_data(1)
    run = training.fit(model, train_ds, valid_ds, epochs=10, model_dir=tmp_path, patience=2,
                       verbose=0, callbacks=[spoiler])

    assert run.best_epoch == 1 and run.epochs == 3  # stopped after two worse epochs
    for restored, best in zip(model.get_weights(), spoiler.first_weights):
        np.testing.assert_allclose(restored, best)
    assert run.best("val_loss") == pytest.approx(min(run.history["val_loss"]))
    assert model.evaluate(valid_ds, verbose=0)[0] == pytest.approx(run.best("val_loss"), rel=1e-5)

    reloaded = keras.models.load_model(tmp_path / "model.keras")
    for saved, best in zip(reloaded.get_weights(), spoiler.first_weights):
        np.testing.assert_allclose(saved, best)
    log = (tmp_path / "training_log.csv").read_text().strip().splitlines()
    assert log[0].startswith("epoch") and "val_accuracy" in log[0] and len(log) == 4
    assert run.seconds > 0 and run.images_per_second > 0
    assert len(run.history["seconds"]) == 3


def test_fit_monitoring_accuracy_picks_the_highest(tmp_path):
    model = tiny_model(learning_rate=0.5)
    run = training.fit(model, tiny_data(0), tiny_data(1), epochs=3, monitor="val_accuracy",
                       verbose=0)
    accuracy = run.history["val_accuracy"]
    assert run.best("val_accuracy") == max(accuracy) and run.checkpoint is None
    assert accuracy.index(max(accuracy)) + 1 == run.best_epoch


def test_out_of_memory_is_reraised_with_the_fix(monkeypatch):
    model = tiny_model()

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(model, "fit", out_of_memory)
    train_ds = tiny_data()
    train_ds.batch_size = 64
    with pytest.raises(RuntimeError, match=r"Lower BATCH_SIZE \(for example to 32\) or IMAGE_SIZE"):
        training.fit(model, train_ds, tiny_data(), epochs=1, verbose=0)


def test_write_metrics_adds_versions_and_device_and_converts_numpy(tmp_path):
    path = tmp_path / "lesson" / "metrics.json"
    training.write_metrics(path, accuracy=np.float32(0.75), counts={"cats": np.int64(3)},
                           folder=paths.DATA)
    record = json.loads(path.read_text())
    assert record["accuracy"] == pytest.approx(0.75) and record["counts"] == {"cats": 3}
    assert record["versions"]["tensorflow"] == tf.__version__ and record["device"] == ["CPU"]
    assert record["folder"] == str(paths.DATA)


class SlowEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        import time
        time.sleep(0.4)


def test_time_limit_stops_before_the_next_epoch_would_overrun():
    run = training.fit(tiny_model(0.1), tiny_data(), tiny_data(1), epochs=50, time_limit=1.0,
                       patience=100, verbose=0, callbacks=[SlowEpochs()])
    assert 1 <= run.epochs <= 3  # of 50 allowed: the limit, not the epochs, ended it


class SlowBatches(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        import time
        time.sleep(0.05)


def test_the_time_budget_schedule_ends_its_decay_when_time_runs_out(tmp_path):
    schedule = training.TimeBudgetSchedule(0.1, seconds=3.0, epochs=1000, steps_per_epoch=4,
                                           warmup_fraction=0.3)
    learning_rates = []
    recorder = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: learning_rates.append(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))))
    model = tiny_model(learning_rate=0.1)
    run = training.fit(model, tiny_data(), tiny_data(1), epochs=1000, patience=None, verbose=0,
                       model_dir=tmp_path, callbacks=[schedule, recorder, SlowBatches()])
    assert schedule.stopped_by_time and 1 < run.epochs < 1000  # the time budget, not the epochs, ended it
    assert run.seconds < 3.0 + 1.5
    peak = max(learning_rates)
    assert 0.06 < peak <= 0.1 + 1e-9  # batches sample the curve near its peak
    assert learning_rates[0] < 0.2 * peak  # the warm-up starts low
    assert learning_rates[-1] < 0.02 * peak  # and the decay has ended when training stops
    after_peak = learning_rates[learning_rates.index(peak):]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(after_peak, after_peak[1:]))
    assert run.history["learning_rate"][-1] == pytest.approx(learning_rates[-1])
    assert keras.models.load_model(tmp_path / "model.keras").get_weights()[0] == pytest.approx(
        model.get_weights()[0])  # without early stopping the last weights are kept


def test_the_time_budget_schedule_follows_the_epochs_when_they_end_first():
    schedule = training.TimeBudgetSchedule(0.1, seconds=600, epochs=3, steps_per_epoch=4, warmup_fraction=0.25)
    run = training.fit(tiny_model(0.1), tiny_data(), tiny_data(1), epochs=3, patience=None, verbose=0,
                       callbacks=[schedule])
    assert run.epochs == 3 and not schedule.stopped_by_time
    assert schedule.learning_rate(0.0) == pytest.approx(0.01) and schedule.learning_rate(0.25) == pytest.approx(0.1)
    assert schedule.learning_rate(0.625) == pytest.approx(0.05) and schedule.learning_rate(1.0) == pytest.approx(0)
    assert run.history["learning_rate"][-1] < 0.01
