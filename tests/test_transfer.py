"""utils.transfer: VGG16 with its preprocessing inside, and cached bottleneck features (lesson 4)."""

import functools
import http.server
import os
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from utils import transfer

IMAGE_SIZE = 32  # the smallest input VGG16 takes: fast, and the code paths are the same


@pytest.fixture(scope="module")
def base():
    keras.utils.set_random_seed(0)
    return transfer.vgg16(weights=None, image_size=IMAGE_SIZE)


def random_images(count, size=IMAGE_SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def test_small_images_are_refused_with_advice():
    with pytest.raises(ValueError, match="at least 32x32"):
        transfer.vgg16(weights=None, image_size=16)


def test_preprocessing_inside_the_model_equals_preprocess_input_by_hand(base):
    images = random_images(3)
    plain = keras.applications.VGG16(include_top=False, weights=None,
                                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    plain.set_weights(base.get_weights())
    by_hand = plain.predict_on_batch(keras.applications.vgg16.preprocess_input(images.copy()))
    np.testing.assert_allclose(base.predict_on_batch(images), by_hand, rtol=1e-5, atol=1e-4)
    layer = transfer.VggPreprocess()
    np.testing.assert_array_equal(layer(images), keras.applications.vgg16.preprocess_input(images.copy()))
    # and it is not a no-op: VGG16 sees BGR minus the ImageNet mean
    assert not np.allclose(base.predict_on_batch(images), plain.predict_on_batch(images))



def test_the_whole_network_with_random_weights_takes_any_size_and_ends_in_fc2_then_1000_classes():
    # lesson 4's route 2 offline: VGG16 with its dense layers, at the run's small size
    full = transfer.vgg16(weights=None, image_size=IMAGE_SIZE, include_top=True)
    assert full.input_shape == (None, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert full.get_layer("fc2").output.shape == (None, 4096)
    assert full.output_shape == (None, 1000)
    assert full.predict_on_batch(random_images(2)).sum(axis=1) == pytest.approx([1, 1], abs=1e-4)

# --- bottleneck features -------------------------------------------------------------------


def colour_folder(root, count, size=8):
    """Class folders of flat-coloured PNGs; image i's colour encodes i (exactly, in float16)."""
    for index in range(count):
        class_name = ("cats", "dogs")[index % 2]
        folder = root / class_name
        folder.mkdir(parents=True, exist_ok=True)
        colour = (index % 200, (index // 200) * 16, 100 * (index % 2))
        Image.new("RGB", (size, size), colour).save(folder / f"{index:05d}.png")
    return root


def folder_dataset(root, size=8, batch_size=16, shuffle=False):
    return keras.utils.image_dataset_from_directory(
        root, image_size=(size, size), batch_size=batch_size, shuffle=shuffle, seed=0, verbose=False)


def mean_colour_base():
    """A stand-in base whose features are each image's mean colour."""
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()],
                            name="mean_colour")


def counting(monkeypatch, base):
    calls = []
    original = base.predict_on_batch

    def predict_on_batch(images):
        calls.append(len(images))
        return original(images)

    monkeypatch.setattr(base, "predict_on_batch", predict_on_batch)
    return calls


def test_bottleneck_features_are_computed_once_in_label_order(tmp_path, monkeypatch):
    root = colour_folder(tmp_path / "images", 70)
    dataset = folder_dataset(root)
    base = mean_colour_base()
    calls = counting(monkeypatch, base)
    first = transfer.bottleneck_features(base, dataset, tmp_path / "cache", progress=False)
    assert not first.reused and len(calls) == 5 and sum(calls) == 70
    assert first.features.dtype == np.float16 and first.features.shape == (70, 3)
    assert isinstance(first.features, np.memmap)
    for row, path, label in zip(first.features, first.file_paths, first.labels):
        index = int(os.path.basename(path)[:5])
        assert tuple(row) == (index % 200, (index // 200) * 16, 100 * (index % 2))
        assert first.class_names[label] == os.path.basename(os.path.dirname(path))
    assert first.file_paths == list(dataset.file_paths)

    calls.clear()
    second = transfer.bottleneck_features(base, dataset, tmp_path / "cache", progress=False)
    assert second.reused and calls == [] and second.seconds == 0
    assert second.extraction_seconds == first.seconds > 0
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.labels, first.labels)

    changed = root / "dogs" / "00001.png"  # a file changes: its features are computed again
    Image.new("RGB", (8, 8), (7, 7, 7)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = transfer.bottleneck_features(base, folder_dataset(root), tmp_path / "cache", progress=False)
    assert not third.reused and sum(calls) == 70
    assert tuple(third.features[third.file_paths.index(str(changed))]) == (7, 7, 7)


def test_bottleneck_features_depend_on_the_base_weights(tmp_path, monkeypatch):
    root = colour_folder(tmp_path / "images", 20)
    keras.utils.set_random_seed(1)
    first_base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 8)], name="tiny")
    second_base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 8)], name="tiny")
    first = transfer.bottleneck_features(first_base, folder_dataset(root), tmp_path / "cache",
                                         progress=False)
    second = transfer.bottleneck_features(second_base, folder_dataset(root), tmp_path / "cache",
                                          progress=False)
    assert not first.reused and not second.reused
    expected = second_base.predict_on_batch(np.stack([np.asarray(Image.open(p), "float32")
                                                      for p in second.file_paths]))
    np.testing.assert_allclose(second.features, expected.astype(np.float16))


def test_bottleneck_features_refuse_a_shuffled_dataset(tmp_path):
    root = colour_folder(tmp_path / "images", 40)
    with pytest.raises(ValueError, match="shuffle=False"):
        transfer.bottleneck_features(mean_colour_base(), folder_dataset(root, shuffle=True),
                                     tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file left taking the disk (0.9 GB in a full run)
    unnamed = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3)), np.zeros(4))).batch(2)
    with pytest.raises(ValueError, match="file"):
        transfer.bottleneck_features(mean_colour_base(), unnamed, tmp_path / "cache2", progress=False)


def test_features_dataset_batches_in_order_or_shuffled(tmp_path):
    root = colour_folder(tmp_path / "images", 30)
    features = transfer.bottleneck_features(mean_colour_base(), folder_dataset(root),
                                            tmp_path / "cache", progress=False)
    ordered = transfer.features_dataset(features, batch_size=8, shuffle=False)
    x = np.concatenate([batch for batch, _ in ordered])
    y = np.concatenate([labels for _, labels in ordered])
    np.testing.assert_array_equal(x, features.features.astype(np.float32))
    np.testing.assert_array_equal(y, features.labels)
    shuffled = transfer.features_dataset(features, batch_size=8, shuffle=True, seed=0)
    epochs = [np.concatenate([batch[:, 0] * 1000 + batch[:, 1] for batch, _ in shuffled])
              for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) and not np.array_equal(epochs[0], epochs[1])
    pairs = {(tuple(row), label) for batch, labels in shuffled.as_numpy_iterator()
             for row, label in zip(batch, labels)}
    assert pairs == {(tuple(row), label) for row, label in zip(features.features.astype(np.float32),
                                                               features.labels)}


def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_growth_mib(function):
    """Peak resident memory while `function` runs, above what was resident before, in MiB.

    TensorFlow's allocations are outside Python's heap (tracemalloc would miss
    them), so this reads the kernel's figures: VmHWM after resetting it, or
    VmRSS sampled every millisecond where the reset is not allowed.
    """
    before = rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM (the peak) to the current VmRSS
        function()
        return (rss_kib("VmHWM") - before) / 1024
    except OSError:
        peak, done = [before], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib("VmRSS"))
                time.sleep(0.001)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            function()
        finally:
            done.set()
            sampler.join()
        return (peak[0] - before) / 1024


def test_memory_stays_flat_while_extracting_thousands_of_images(tmp_path):
    count = 3000
    root = colour_folder(tmp_path / "images", count, size=32)
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(32, 1)], name="wide")
    dataset = folder_dataset(root, size=32, batch_size=64)
    warm_up = dataset.take(2)
    warm_up.file_paths = dataset.file_paths[:128]
    transfer.bottleneck_features(base, warm_up, tmp_path / "warm_up", progress=False)

    result = {}
    growth = peak_rss_growth_mib(lambda: result.update(features=transfer.bottleneck_features(
        base, dataset, tmp_path / "cache", progress=False)))
    features = result["features"].features
    feature_mib = features.size * 2 / 2**20
    print(f"{count} images, {feature_mib:.0f} MiB of float16 features: peak RSS grew {growth:.1f} MiB")
    assert features.shape == (count, 32, 32, 32) and feature_mib > 180
    # Keeping the features in memory would add at least feature_mib (float32: twice that).
    assert growth < 60, f"memory grew by {growth:.0f} MiB while extracting {feature_mib:.0f} MiB"


# --- ImageNet weights offline --------------------------------------------------------------


@pytest.fixture
def empty_server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 that has no files (every request: 404), and an empty Keras home."""
    from keras.src.backend import config

    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KERAS_HOME", raising=False)  # the advice names ~/.keras/models, as on a learner's machine
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_missing_imagenet_weights_give_advice_not_a_bare_exception(empty_server, monkeypatch):
    from keras.src.applications import vgg16 as keras_vgg16

    monkeypatch.setattr(keras_vgg16, "WEIGHTS_PATH_NO_TOP", f"{empty_server}/vgg16_notop.h5")
    with pytest.raises(transfer.WeightsUnavailable) as raised:
        transfer.vgg16(weights="imagenet", image_size=IMAGE_SIZE)
    message = str(raised.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert ".keras/models" in message and "weights=None" in message and "404" in message


def tiny_imagenet_model():
    """A stand-in for VGG16 with its top: 1,000 softmax outputs that favour classes 7, 3, 9, ..."""
    bias = np.zeros(1000, "float32")
    bias[[7, 3, 9, 1, 5]] = [5, 4, 3, 2, 1]
    return keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(1000, activation="softmax", kernel_initializer="zeros",
                                                bias_initializer=keras.initializers.Constant(bias))])


def test_imagenet_top5_names_the_most_likely_classes(monkeypatch):
    from keras.src.applications import imagenet_utils

    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)})
    top5 = transfer.imagenet_top5(tiny_imagenet_model(), np.zeros((2, 4, 4, 3)))
    assert [name for name, _ in top5[0]] == ["class_7", "class_3", "class_9", "class_1", "class_5"]
    probabilities = [probability for _, probability in top5[1]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1


def test_imagenet_class_names_offline_give_advice(empty_server, monkeypatch):
    from keras.src.applications import imagenet_utils

    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_PATH", f"{empty_server}/imagenet_class_index.json")
    with pytest.raises(transfer.WeightsUnavailable, match="imagenet_class_index.json"):
        transfer.imagenet_top5(tiny_imagenet_model(), np.zeros((1, 4, 4, 3)))


def test_a_model_on_the_frozen_base_saves_and_loads_with_its_preprocessing(base, tmp_path):
    """Lesson 4's model: the base frozen and called with training=False, a new head; block 5 unfrozen."""
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    features = base(inputs, training=False)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2  # the head only
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert len(model.trainable_weights) == 3 * 2 + 2  # block 5's three convolutions, and the head
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    images = random_images(3)
    np.testing.assert_allclose(reloaded.predict_on_batch(images), model.predict_on_batch(images),
                               rtol=1e-5, atol=1e-6)
    assert isinstance(reloaded.get_layer("vgg16").get_layer("preprocess"), transfer.VggPreprocess)


def test_lesson_4s_batch_normalization_cell_shows_what_the_pinned_keras_does():
    """Lesson 4 says that in the pinned Keras `fit` overrides `training=False` inside a nested model, and that a
    frozen BatchNormalization layer stays in inference mode: its own cell, run here, must show both (a Keras with
    pull request #23364 makes the first False: then the lesson's text needs changing)."""
    import nbformat

    from utils import paths

    notebook = nbformat.read(paths.NOTEBOOKS / "04_vgg16_finetune.ipynb", as_version=4)
    (cell,) = [cell for cell in notebook.cells if "def statistics_move(" in cell.source]
    assert any(f"In Keras {keras.__version__}, the version this kit pins, it does not" in other.source
               for other in notebook.cells)
    namespace = {"keras": keras, "np": np, "SEED": 0}
    exec(cell.source.split("\nprint(")[0], namespace)  # the function, without the cell's printing
    assert namespace["statistics_move"](keep_batch_norm_frozen=False) is True
    assert namespace["statistics_move"](keep_batch_norm_frozen=True) is False
