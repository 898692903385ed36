"""utils.training: early stopping restores the best weights; files; devices; errors."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils import paths, resume, runs, schedules, training


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


def test_fit_without_a_folder_keeps_nothing_and_the_best_epoch_has_the_lowest_validation_loss():
    run = training.fit(tiny_model(learning_rate=0.5), tiny_data(0), tiny_data(1), epochs=3, verbose=0)
    losses = run.history["val_loss"]
    assert run.checkpoint is None and losses.index(min(losses)) + 1 == run.best_epoch
    assert run.best("val_accuracy") == pytest.approx(run.history["val_accuracy"][run.best_epoch - 1])


def test_zero_epochs_are_refused_in_one_line_before_keras_trains(tmp_path):
    """Lesson 4 with HEAD_EPOCHS 0 ended in a KeyError: 'val_loss' from the empty history."""
    with pytest.raises(ValueError, match=r"^epochs = 0: train for 1 epoch or more \(the lesson's EPOCHS"):
        training.fit(tiny_model(), tiny_data(0), tiny_data(1), epochs=0, model_dir=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_out_of_memory_is_reraised_with_the_fix(monkeypatch):
    model = tiny_model()

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(model, "fit", out_of_memory)
    train_ds = tiny_data()
    train_ds.batch_size = 64
    with pytest.raises(RuntimeError, match=r"Lower BATCH_SIZE \(for example to 32\), or the image size .*SAMPLE_IMAGE"):
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
    schedule = schedules.TimeBudgetSchedule(0.1, seconds=3.0, epochs=1000, steps_per_epoch=4,
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
    assert 0.06 < peak <= 0.1 + 1e-6  # batches sample the curve near its peak (a float32: 0.1 is 0.10000000149)
    assert learning_rates[0] < 0.2 * peak  # the warm-up starts low
    assert learning_rates[-1] < 0.02 * peak  # and the decay has ended when training stops
    after_peak = learning_rates[learning_rates.index(peak):]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(after_peak, after_peak[1:]))
    assert run.history["learning_rate"][-1] == pytest.approx(learning_rates[-1])
    assert keras.models.load_model(tmp_path / "model.keras").get_weights()[0] == pytest.approx(
        model.get_weights()[0])  # without early stopping the last weights are kept


def test_the_time_budget_schedule_follows_the_epochs_when_they_end_first():
    schedule = schedules.TimeBudgetSchedule(0.1, seconds=600, epochs=3, steps_per_epoch=4, warmup_fraction=0.25)
    run = training.fit(tiny_model(0.1), tiny_data(), tiny_data(1), epochs=3, patience=None, verbose=0,
                       callbacks=[schedule])
    assert run.epochs == 3 and not schedule.stopped_by_time
    assert schedule.learning_rate(0.0) == pytest.approx(0.01) and schedule.learning_rate(0.25) == pytest.approx(0.1)
    assert schedule.learning_rate(0.625) == pytest.approx(0.05) and schedule.learning_rate(1.0) == pytest.approx(0)
    assert run.history["learning_rate"][-1] < 0.01


RESUMABLE = textwrap.dedent("""
    import json, os, signal
    import keras, numpy as np, tensorflow as tf
    from utils import runs, schedules, training

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # no shuffling: every epoch the same
    valid_ds = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    class Spoil(keras.callbacks.Callback):  # epochs 3 and later start from noisy weights: early stopping ends it
        def on_epoch_begin(self, epoch, logs=None):
            if os.environ.get("KILL_AT_EPOCH") == str(epoch + 1):
                os.kill(os.getpid(), signal.SIGKILL)  # after epoch `epoch` ended and was backed up
            if epoch >= 2:
                noise = np.random.default_rng(epoch)
                self.model.set_weights([w + noise.normal(scale=3.0, size=w.shape) for w in self.model.get_weights()])

    run = runs.start("03_test", sample=True, resume_key={"epochs": 8, "seed": 0})
    schedule = schedules.TimeBudgetSchedule(0.05, seconds=None, epochs=8, steps_per_epoch=4, warmup_fraction=0.3)
    fitted = training.fit(model, train_ds, valid_ds, epochs=8, model_dir=run.folder, patience=2, verbose=0,
                          callbacks=[schedule, Spoil()])
    np.savez(run.folder / "final.npz", *model.get_weights())
    print(json.dumps({"folder": str(run.folder), "epochs": fitted.epochs, "best_epoch": fitted.best_epoch,
                      "history": fitted.history}))
""")


def train_in_a_process(models, kill_at_epoch=None):
    env = {**os.environ, "COURSE_MODELS_DIR": str(models), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(paths.ROOT)}
    if kill_at_epoch:
        env["KILL_AT_EPOCH"] = str(kill_at_epoch)
    return subprocess.run([sys.executable, "-c", RESUMABLE], capture_output=True, text=True, env=env,
                          timeout=300, cwd=paths.ROOT)


def test_a_killed_training_resumes_where_it_stopped_and_ends_as_if_never_interrupted(tmp_path):
    reference = train_in_a_process(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(reference.stdout.strip().splitlines()[-1])

    killed = train_in_a_process(tmp_path / "models", kill_at_epoch=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = train_in_a_process(tmp_path / "models")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    folder = pathlib.Path(result["folder"])
    assert f"resuming run {folder.name} from epoch 3" in resumed.stdout  # runs.start found the folder
    assert "resuming training from epoch 3" in resumed.stdout  # and training.fit its backup
    assert len(list(folder.parent.iterdir())) == 1  # the same run, not a second one

    # Early stopping kept its best epoch and patience over the kill: both runs stop after epoch 4, and
    # restore epoch 2's weights; the schedule went on from its step count instead of warming up again.
    assert result["epochs"] == expected["epochs"] == 4 and result["best_epoch"] == expected["best_epoch"] == 2
    assert result["history"]["learning_rate"] == pytest.approx(expected["history"]["learning_rate"], rel=1e-6)
    assert result["history"]["val_loss"] == pytest.approx(expected["history"]["val_loss"], rel=1e-5)
    with np.load(folder / "final.npz") as weights, np.load(pathlib.Path(expected["folder"]) / "final.npz") as same:
        for name in same.files:
            np.testing.assert_allclose(weights[name], same[name], rtol=1e-5, atol=1e-6)
    log = (folder / "training_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log] == ["epoch", "0", "1", "2", "3"]  # appended, not overwritten
    assert not (folder / "backup").exists()  # deleted when training ended normally


def test_the_log_is_cut_back_to_the_epochs_the_backup_holds(tmp_path):
    # killed after CSVLogger wrote epoch 2's row but before the backup of epoch 2: that epoch is trained again
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,0.9\n1,0.6,0.8\n2,0.7,0.7\n")
    resume.keep_log_rows(log, 2)
    assert log.read_text() == "epoch,accuracy,loss\n0,0.5,0.9\n1,0.6,0.8\n"
    resume.keep_log_rows(tmp_path / "absent.csv", 2)  # no log yet: nothing to cut
    assert not (tmp_path / "absent.csv").exists()


def test_a_backup_written_when_training_had_already_stopped_only_finishes_it(tmp_path):
    train_ds, valid_ds = tiny_data(0), tiny_data(1)
    schedule = schedules.TimeBudgetSchedule(0.1, seconds=None, epochs=2, steps_per_epoch=4)

    class DieAtTheEnd(keras.callbacks.Callback):  # as if the process died just before training ended
        def __init__(self, armed):
            super().__init__()
            self.armed = armed

        def on_train_end(self, logs=None):
            if self.armed:
                raise KeyboardInterrupt

    model = tiny_model(0.1)
    with pytest.raises(KeyboardInterrupt):
        training.fit(model, train_ds, valid_ds, epochs=5, model_dir=tmp_path, patience=None, verbose=0,
                     callbacks=[schedule, DieAtTheEnd(armed=True)])
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["stopped"]
    again = tiny_model(0.1)
    run = training.fit(again, train_ds, valid_ds, epochs=5, model_dir=tmp_path, patience=None, verbose=0,
                       callbacks=[schedule, DieAtTheEnd(armed=False)])
    assert run.epochs == 2 and schedule.steps == 8 and not (tmp_path / "backup").exists()
    for restored, stopped in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_allclose(restored, stopped)


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    yield tmp_path / "models"
    for handle in resume._held.values():  # as if this process had ended: its runs are free again
        handle.close()
    resume._held.clear()


def test_only_an_unfinished_run_with_the_same_parameters_is_resumed(models):
    key = {"epochs": 8, "image_size": 64}
    first = runs.start("03_test", sample=True, resume_key=key)
    assert runs.start("03_test", sample=True, resume_key=key).folder == first.folder  # the cell run again
    assert runs.start("03_test", sample=True, resume_key={**key, "epochs": 9}).folder != first.folder
    assert runs.start("03_test", sample=False, resume_key=key).folder != first.folder
    assert runs.start("03_test", sample=True).folder != first.folder  # no key: always a new folder

    runs.finish(first, 0.5, "val_accuracy")
    before = {path.name: path.read_bytes() for path in first.folder.iterdir()}
    again = runs.start("03_test", sample=True, resume_key=key)
    assert again.folder != first.folder  # a finished run is never written again
    assert {path.name: path.read_bytes() for path in first.folder.iterdir()} == before


def test_a_run_another_live_process_trains_in_is_not_taken(models):
    key = {"epochs": 8}
    first = runs.start("03_test", sample=True, resume_key=key)
    for handle in resume._held.values():  # this process "ends"...
        handle.close()
    resume._held.clear()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys; handle = open(sys.argv[1]); "
                               "fcntl.flock(handle, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                               str(first.folder / resume.STARTED)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # ...and another one trains in the run
        assert runs.start("03_test", sample=True, resume_key=key).folder != first.folder
    finally:
        holder.communicate("", timeout=30)
    second_look = runs.start("03_test", sample=True, resume_key=key)  # the newest unfinished run, now free
    assert second_look.folder.name > first.folder.name


# A cell run twice in JupyterLab, or stopped: no silent second training, nothing finished written again


class StopIn(keras.callbacks.Callback):
    """Presses Ctrl-C (raises KeyboardInterrupt) in the middle of epoch `epoch` (1-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch_now == self.epoch and batch == 1:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_now = epoch + 1


def test_fitting_an_already_trained_model_again_is_refused_before_anything_is_written(tmp_path):
    model = tiny_model(0.1)
    training.fit(model, tiny_data(0), tiny_data(1), epochs=2, model_dir=tmp_path / "first", patience=None, verbose=0)
    with pytest.raises(ValueError, match=r"has already trained 8 steps in this session, and no backup .* run the cell "
                                         r"that builds and compiles it again first") as refused:
        training.fit(model, tiny_data(0), tiny_data(1), epochs=2, model_dir=tmp_path / "again", verbose=0)
    assert "\n" not in str(refused.value) and not (tmp_path / "again").exists()
    with pytest.raises(ValueError, match="already trained"):
        training.fit(model, tiny_data(0), tiny_data(1), epochs=2, verbose=0)  # with no folder too
    fresh = tiny_model(0.1)  # the build-and-compile cell run again
    assert training.fit(fresh, tiny_data(0), tiny_data(1), epochs=2, model_dir=tmp_path / "again",
                        patience=None, verbose=0).epochs == 2


def test_a_training_stopped_after_a_backup_says_so_in_one_line_and_the_same_cell_resumes_it(tmp_path):
    model = tiny_model(0.1)
    with pytest.raises(KeyboardInterrupt) as stopped:
        training.fit(model, tiny_data(0), tiny_data(1), epochs=4, model_dir=tmp_path, patience=None, verbose=0,
                     callbacks=[StopIn(3)])
    assert str(stopped.value).startswith("training stopped in epoch 3: the model in memory is part-trained. Run "
                                         "this cell again to resume from epoch 3")
    assert stopped.value.__suppress_context__ and "\n" not in str(stopped.value)
    recorded = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["callbacks"]
    assert "ModelCheckpoint" in [entry["class"] for entry in recorded]  # as kits before wrote: their backups resume
    run = training.fit(model, tiny_data(0), tiny_data(1), epochs=4, model_dir=tmp_path, patience=None, verbose=0,
                       callbacks=[StopIn(99)])  # the same cell: the same callbacks, of the same kinds
    assert run.epochs == 4 and len(run.history["loss"]) == 4


def test_a_training_stopped_before_any_backup_asks_for_the_model_to_be_built_again(tmp_path):
    model = tiny_model(0.1)
    with pytest.raises(KeyboardInterrupt, match="before an epoch was backed up: .* Run the cell that builds and "
                                                "compiles it again, then this one"):
        training.fit(model, tiny_data(0), tiny_data(1), epochs=3, model_dir=tmp_path, verbose=0, callbacks=[StopIn(1)])
    with pytest.raises(ValueError, match="already trained 2 steps"):  # part-trained weights are no fresh start
        training.fit(model, tiny_data(0), tiny_data(1), epochs=3, model_dir=tmp_path, verbose=0)


def test_a_checkpoint_interrupted_while_it_saves_leaves_the_best_model_so_far_whole(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model, saves = tiny_model(0.1), []
    real_save = keras.Model.save

    def save_then_stop(self, filepath, *args, **kwargs):
        saves.append(pathlib.Path(filepath))
        if len(saves) == 2:  # Ctrl-C halfway through writing the second one
            pathlib.Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        training.fit(model, tiny_data(0), tiny_data(1), epochs=3, model_dir=tmp_path, patience=None, verbose=0)
    assert all(path.parent == tmp_path and path.name.startswith(".") for path in saves)  # never in place
    monkeypatch.undo()
    first = keras.models.load_model(tmp_path / "model.keras")  # epoch 1's, whole
    assert first.count_params() == model.count_params()
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_file() and path.suffix == ".keras") == [
        "model.keras"]


def test_nothing_in_a_finished_runs_folder_is_written_again(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    run = runs.start("03_cnn_from_scratch", sample=True)
    training.fit(tiny_model(0.1), tiny_data(0), tiny_data(1), epochs=2, model_dir=run.folder, verbose=0)
    training.write_metrics(run.folder / "metrics.json", test_accuracy=0.5)
    runs.finish(run, 0.5, "val_accuracy")
    before = {path: path.read_bytes() for path in run.folder.rglob("*") if path.is_file()}
    refusal = rf"{run.folder.name} is a finished run, whose files are never written again: run the cell that starts"
    with pytest.raises(ValueError, match=refusal):
        training.fit(tiny_model(0.1), tiny_data(0), tiny_data(1), epochs=2, model_dir=run.folder, verbose=0)
    with pytest.raises(ValueError, match=refusal):
        training.fit(tiny_model(0.1), tiny_data(0), tiny_data(1), epochs=2, model_dir=run.folder / "frozen", verbose=0)
    with pytest.raises(ValueError, match=refusal):
        training.write_metrics(run.folder / "metrics.json", test_accuracy=0.9)
    with pytest.raises(ValueError, match=refusal):
        runs.finish(run, 0.9, "val_accuracy")
    assert {path: path.read_bytes() for path in run.folder.rglob("*") if path.is_file()} == before
