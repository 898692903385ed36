"""utils.hardware: mixed precision only where it pays, the dtype policy only inside the scope, several devices
and several machines training to the same weights as one."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from utils import hardware, paths


def fake_gpu(name, capability):
    """`detect`'s arguments for a machine with one GPU reporting `capability`."""
    return {"gpus": ["fake GPU"], "details": lambda gpu: {"device_name": name, "compute_capability": capability}}


def test_mixed_precision_only_on_a_gpu_with_compute_capability_7_or_more():
    modern = hardware.detect(**fake_gpu("NVIDIA T4", (7, 5)))
    assert modern.precision == "mixed_float16" and modern.replicas == 1
    assert str(modern) == "1 GPU (NVIDIA T4, compute capability 7.5): mixed_float16, XLA on, 1 replica"  # Keras' "auto"
    assert not hardware.detect(xla=False, **fake_gpu("NVIDIA T4", (7, 5))).xla
    assert not hardware.detect(gpus=[]).xla  # XLA on a CPU is slower: "auto" leaves it off
    two = {"gpus": ["GPU:0", "GPU:1"], "details": lambda gpu: {"device_name": "NVIDIA T4", "compute_capability": (7, 5)}}
    assert not hardware.detect(**two).xla  # nor under MirroredStrategy, as Keras' own "auto" does
    assert hardware.detect(mixed_precision=False, **fake_gpu("NVIDIA T4", (7, 5))).precision == "float32"

    old = hardware.detect(**fake_gpu("Tesla P4", (6, 1)))
    assert old.precision == "float32" and "compute capability 6.1" in old.describe()
    cpu = hardware.detect(gpus=[], xla=True)
    assert cpu.precision == "float32" and cpu.describe() == "CPU: float32, XLA on, 1 replica"
    assert cpu.global_batch(32) == 32
    for machine in (fake_gpu("Tesla P4", (6, 1)), {"gpus": []}):
        with pytest.raises(ValueError, match=r'mixed_precision=True, but .*: use mixed_precision="auto"'):
            hardware.detect(mixed_precision=True, **machine)
    with pytest.raises(ValueError, match="use \"auto\", True or False"):
        hardware.detect(mixed_precision="yes")


def small_network(output_dtype=None):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(2, activation="softmax", dtype=output_dtype)])


def test_the_scope_sets_the_policy_only_inside_and_the_output_stays_float32():
    hw = hardware.detect(**fake_gpu("NVIDIA T4", (7, 5)))
    assert keras.mixed_precision.global_policy().name == "float32"
    with hw.scope():
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        model = small_network(output_dtype="float32")
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        careless = small_network()
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing global changed behind our back
    assert model.layers[0].compute_dtype == "float16" and model.outputs[0].dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # Keras scales the float16 loss
    assert hardware.check_output_float32(model) is model
    with pytest.raises(ValueError, match=r'is float16: under mixed precision give its last layer dtype="float32"'):
        hardware.check_output_float32(careless)
    rng = np.random.default_rng(0)
    history = model.fit(rng.normal(size=(32, 4)), rng.integers(0, 2, 32), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    with pytest.raises(RuntimeError), hw.scope():
        raise RuntimeError("a cell that fails half way")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_tf_config_names_the_machines(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert hardware.worker_count() == 1 and hardware.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert hardware.worker_count() == 2 and not hardware.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}))
    assert hardware.detect(gpus=[]).replicas == 1  # one worker: no need to talk to anyone
    monkeypatch.setenv("TF_CONFIG", "{cluster: oops")
    with pytest.raises(ValueError, match="TF_CONFIG is not JSON"):
        hardware.detect(gpus=[])


# With plain SGD, no dropout and the same data in the same order, one step on a batch of 16 on one device and
# one step with the batch split 8 + 8 between two replicas are the same computation: each replica's gradient
# is that of the mean loss over its 8 examples, Keras scales each by 1/2 and adds them, which is the gradient
# of the mean over all 16. So the weights agree after any number of steps, to float rounding.
MIRRORED = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from utils import hardware

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    start = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(2, dtype="float32")]).get_weights()

    def train(hw, batch_size):
        with hw.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                                      keras.layers.Dense(2, dtype="float32")])
            model.set_weights(start)
            model.compile(optimizer=keras.optimizers.SGD(0.2),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(hw.global_batch(batch_size))
        model.fit(dataset, epochs=3, verbose=0, shuffle=False)
        return model.get_weights()

    two, one = hardware.detect(devices=["/cpu:0", "/cpu:1"]), hardware.detect()
    mirrored, single = train(two, 8), train(one, 16)
    print(json.dumps({"replicas": [two.replicas, one.replicas], "line": str(two),
                      "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
                      "difference": max(float(np.abs(a - b).max()) for a, b in zip(mirrored, single))}))
""")


def run_python(code, *args, env=None, timeout=180):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(paths.ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=paths.ROOT)


def test_two_devices_reach_the_weights_of_one_with_the_global_batch_split_between_them():
    result = run_python(MIRRORED)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == [2, 1]
    assert figures["line"] == "2 devices (/cpu:0, /cpu:1): float32, XLA off, 2 replicas"
    assert figures["moved"] > 0.05  # training changed the weights...
    assert figures["difference"] < 1e-5  # ...and in the same way on two devices as on one


# Keras 3.15's model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so training.fit trains
# there with hardware.fit_on_workers. Each worker reads its own share of every batch; the gradients, the metrics
# and BatchNormalization(synchronized=True)'s statistics are summed over both, so they end in step.
WORKER = textwrap.dedent("""
    import json, pathlib, sys
    import keras, numpy as np, tensorflow as tf
    from utils import hardware, training

    hw = hardware.detect()  # TF_CONFIG names two workers: MultiWorkerMirroredStrategy
    folder, index = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int32")
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(hw.global_batch(8))
    valid_ds = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(hw.global_batch(8))
    keras.utils.set_random_seed(index)  # the chief's initial weights are broadcast to the other worker
    with hw.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                                  keras.layers.BatchNormalization(synchronized=True), keras.layers.Activation("relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    run = training.fit(model, train_ds, valid_ds, epochs=2, patience=2, verbose=0, hardware=hw,
                       model_dir=folder / "model" if hardware.is_chief() else None)
    np.savez(folder / f"worker{index}.npz", *model.get_weights())
    print(json.dumps({"line": str(hw), "replicas": hw.replicas, "epochs": run.epochs, "history": run.history}))
""")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def test_two_worker_processes_train_with_training_fit_to_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(paths.ROOT)}
    processes = [subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), str(index)], cwd=paths.ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                             "task": {"type": "worker", "index": index}})})
        for index in range(2)]
    try:
        outputs = [process.communicate(timeout=240) for process in processes]
    finally:
        for process in processes:  # a worker left waiting for the other is killed
            if process.poll() is None:
                process.kill()
                process.wait()
    results = []
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
        assert results[-1]["replicas"] == 2 and results[-1]["line"].startswith("2 machines (this one worker ")
    with np.load(tmp_path / "worker0.npz") as first, np.load(tmp_path / "worker1.npz") as second:
        for name in first.files:  # Dense kernels and biases, BatchNormalization's moving mean and variance
            np.testing.assert_array_equal(first[name], second[name])
    chief, other = results
    assert chief["epochs"] == other["epochs"] == 2 and len(chief["history"]["val_loss"]) == 2
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "steps"):  # metrics of both workers' data
        assert chief["history"][name] == other["history"][name], name
    assert chief["history"]["steps"] == [4, 4] and chief["history"]["loss"][1] < chief["history"]["loss"][0]
    saved = keras.models.load_model(tmp_path / "model" / "model.keras")  # written by the chief alone
    with np.load(tmp_path / "worker0.npz") as first:
        for kept, trained in zip(saved.get_weights(), (first[name] for name in first.files)):
            np.testing.assert_array_equal(kept, trained)
    log = (tmp_path / "model" / "training_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log] == ["epoch", "0", "1"] and not (tmp_path / "model" / "backup").exists()


def test_only_a_model_built_under_multi_worker_mirrored_strategy_trains_outside_model_fit():
    assert not hardware.on_several_machines(small_network())  # the default strategy: model.fit
    with hardware.detect(devices=["/cpu:0"]).scope():
        assert not hardware.on_several_machines(small_network())
