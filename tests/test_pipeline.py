"""utils.pipeline and utils.warps: decoded images against PIL, batches, caching, augmentation, tf.distribute."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from utils import pipeline, synth, warps

# TensorFlow decodes JPEGs with libjpeg's fast integer DCT, PIL with the slow
# accurate one: the same file differs by a level or two, a few at worst.
DECODE_MEAN, DECODE_MAX = 2.0, 10


def write_images(folder, sizes, seed=0):
    """Writes photo-like JPEGs (toy_pets drawings) of the given sizes into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = folder.parent / f".drawn-{folder.name}"
    synth.toy_pets(drawn, max(2, len(sizes)), seed=seed, test_count=0, progress=False)
    sources = sorted((drawn / "train").glob("*.jpg"))
    for index, size in enumerate(sizes):
        Image.open(sources[index]).resize(size).save(folder / f"image{index}.jpg", quality=92)


def bilinear_reference(image, height, width):
    """TensorFlow's bilinear resize (half-pixel centres, no antialiasing), in NumPy."""
    image = np.asarray(image, float)

    def axis(out_size, in_size):
        position = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, in_size - 1), position - low

    top, bottom, wy = axis(height, image.shape[0])
    left, right, wx = axis(width, image.shape[1])
    rows = image[top] * (1 - wy)[:, None, None] + image[bottom] * wy[:, None, None]
    return rows[:, left] * (1 - wx)[None, :, None] + rows[:, right] * wx[None, :, None]


def first_batch(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Three classes with unequal counts; folder names not in creation order."""
    root = tmp_path_factory.mktemp("zoo") / "train"
    for name, count in (("zebras", 3), ("ants", 5), ("moths", 2)):
        write_images(root / name, [(60 + 7 * i, 50 + 5 * i) for i in range(count)], seed=len(name))
    return root


def test_native_size_images_match_pil_decode(tmp_path):
    write_images(tmp_path / "data" / "things", [(150, 150)] * 4)
    dataset = pipeline.image_dataset(tmp_path / "data", 150, batch_size=4, shuffle=False)
    images, _ = first_batch(dataset)
    for image, path in zip(images, dataset.file_paths):
        difference = np.abs(image - np.asarray(Image.open(path).convert("RGB"), float))
        assert difference.mean() < DECODE_MEAN and difference.max() <= DECODE_MAX


def test_enlarged_images_match_pil_bilinear_resize(tmp_path):
    write_images(tmp_path / "data" / "things", [(100, 80), (120, 130), (90, 150)])
    dataset = pipeline.image_dataset(tmp_path / "data", (150, 140), batch_size=3, shuffle=False)
    images, _ = first_batch(dataset)
    assert images.shape == (3, 150, 140, 3)
    for image, path in zip(images, dataset.file_paths):
        reference = np.asarray(Image.open(path).convert("RGB").resize((140, 150), Image.BILINEAR), float)
        difference = np.abs(image - reference)
        assert difference.mean() < DECODE_MEAN and difference.max() <= DECODE_MAX


def test_shrunk_photos_match_pil_decode_with_tensorflows_bilinear(tmp_path):
    # PIL's bilinear smooths (antialiases) when shrinking; TensorFlow's does not,
    # so the reference is PIL's decode followed by TensorFlow's arithmetic.
    write_images(tmp_path / "data" / "things", [(400, 350), (480, 300), (320, 440)])
    dataset = pipeline.image_dataset(tmp_path / "data", 150, batch_size=3, shuffle=False)
    images, _ = first_batch(dataset)
    for image, path in zip(images, dataset.file_paths):
        reference = np.round(bilinear_reference(Image.open(path).convert("RGB"), 150, 150))
        difference = np.abs(image - reference)
        assert difference.mean() < DECODE_MEAN and difference.max() <= DECODE_MAX


def test_batches_shape_dtype_and_label_order(zoo):
    dataset = pipeline.image_dataset(zoo, (40, 30), batch_size=4, shuffle=False)
    assert dataset.class_names == ["ants", "moths", "zebras"]
    assert dataset.class_counts == {"ants": 5, "moths": 2, "zebras": 3}
    assert dataset.num_images == 10 and len(dataset.file_paths) == 10
    batches = list(dataset)
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    for x, y in batches:
        assert x.shape[1:] == (40, 30, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
        assert 0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 255
        np.testing.assert_array_equal(x.numpy(), np.round(x.numpy()))
    labels = np.concatenate([y.numpy() for _, y in batches])
    expected = [dataset.class_names.index(pathlib.Path(path).parent.name) for path in dataset.file_paths]
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(labels, [0] * 5 + [1] * 2 + [2] * 3)


def test_shuffle_reorders_each_epoch_and_repeats_for_a_seed(zoo):
    def epoch_labels(dataset):
        return [tuple(np.concatenate([y.numpy() for _, y in dataset])) for _ in range(3)]

    first = epoch_labels(pipeline.image_dataset(zoo, 16, batch_size=10, seed=5))
    again = epoch_labels(pipeline.image_dataset(zoo, 16, batch_size=10, seed=5))
    assert first == again
    assert len(set(first)) > 1, "each epoch should see a new order"
    assert all(sorted(labels) == [0] * 5 + [1] * 2 + [2] * 3 for labels in first)


@pytest.mark.parametrize("cache", ["memory", "disk", "none"])
def test_cache_keeps_the_first_decode(tmp_path, cache):
    write_images(tmp_path / "data" / "things", [(64, 64)] * 2)
    setting = {"memory": True, "disk": str(tmp_path / "cache" / "things"), "none": False}[cache]
    dataset = pipeline.image_dataset(tmp_path / "data", 32, batch_size=2, shuffle=False, cache=setting)
    before = np.concatenate([x.numpy() for x, _ in dataset])  # a cache is kept after a whole epoch
    Image.new("RGB", (64, 64), (255, 0, 0)).save(dataset.file_paths[0])  # our own test file
    after = np.concatenate([x.numpy() for x, _ in dataset])
    if cache == "none":
        assert not np.array_equal(before, after)
        np.testing.assert_allclose(after[0], np.broadcast_to([255, 0, 0], (32, 32, 3)), atol=3)
    else:
        np.testing.assert_array_equal(before, after)
    if cache == "disk":
        assert list((tmp_path / "cache").glob("things*")), "no cache files on disk"


def test_bad_folders_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="download"):
        pipeline.image_dataset(tmp_path / "missing", 32)
    write_images(tmp_path / "flat", [(40, 40)] * 2)
    with pytest.raises(ValueError, match="organize"):
        pipeline.image_dataset(tmp_path / "flat", 32)
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        pipeline.image_dataset(tmp_path / "empty", 32)
    write_images(tmp_path / "ok" / "cats", [(40, 40)] * 2)
    with pytest.raises(ValueError, match="cache must be"):
        pipeline.image_dataset(tmp_path / "ok", 32, cache=3)


def random_images(batch=4, height=37, width=29, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


@pytest.mark.parametrize("fill_mode", warps.FILL_MODES)
def test_affine_warp_matches_keras_affine_transform(fill_mode):
    images = random_images()
    layer = warps.RandomAffine(0.5, rotation=0.2, zoom=0.3, shear=0.3, translation=0.2, seed=1)
    transforms = layer.transforms(4, 37, 29)
    ours = keras.ops.convert_to_numpy(warps.affine_warp(images, transforms, fill_mode))
    reference = keras.ops.convert_to_numpy(
        keras.ops.image.affine_transform(images, transforms, fill_mode=fill_mode))
    assert not np.allclose(ours, images, atol=1)
    np.testing.assert_allclose(ours, reference, atol=0.05)


def test_adjust_contrast_matches_keras_random_contrast():
    images, factors = random_images(), np.array([0.8, 1.0, 1.2, 1.5], "float32")
    mean = images.mean(axis=(1, 2), keepdims=True)
    reference = np.clip((images - mean) * factors[:, None, None, None] + mean, 0, 255)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(warps.adjust_contrast(images, factors)), reference,
                               atol=1e-3)
    stock = keras.layers.RandomContrast(0.5, value_range=(0, 255))  # its own arithmetic, with our factors
    stock_output = stock.transform_images(images, {"contrast_factor": factors[:, None, None, None]})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stock_output), reference, atol=1e-3)


def test_the_xla_compiled_augmentation_image_dataset_uses_gives_the_same_images():
    images = random_images()
    transforms = warps.RandomAffine(0.5, 0.2, 0.2, 0.2, 0.2, seed=2).transforms(4, 37, 29)
    factors = tf.constant([0.8, 1.2, 1.0, 0.9])
    expected = keras.ops.convert_to_numpy(warps.adjust_contrast(warps.affine_warp(images, transforms), factors))
    np.testing.assert_allclose(warps._xla_augment(images, transforms, factors, "reflect").numpy(), expected,
                               atol=0.01)
    as_stored = np.round(images).astype("uint8")  # image_dataset hands over the cached uint8 pixels
    plain = warps._augment(as_stored.astype("float32"), transforms, factors, "reflect")
    np.testing.assert_allclose(warps._xla_augment(as_stored, transforms, factors, "reflect").numpy(),
                               keras.ops.convert_to_numpy(plain), atol=0.01)


def test_the_augmentation_compiles_in_the_background_for_the_datasets_own_shapes(zoo):
    traces = warps._xla_augment.experimental_get_tracing_count()
    augment = pipeline.augmentation(**pipeline.LESSON3_AUGMENTATION)
    dataset = pipeline.image_dataset(zoo, 23, batch_size=3, augment=augment)
    for thread in threading.enumerate():
        if thread.name == "compile-augmentation":
            thread.join()
    batches = [x.shape[0] for x, _ in dataset]  # 10 images: batches of 3, 3, 3, 1, all padded to 3
    assert batches == [3, 3, 3, 1]
    # One trace, shared by the tf.data graph and the background compile: the
    # compiled code is keyed by it, so the first batch finds it ready.
    assert warps._xla_augment.experimental_get_tracing_count() == traces + 1


def test_random_affine_with_zero_ranges_is_the_identity():
    images = random_images()
    output = warps.RandomAffine(0.0, 0.0, 0.0, 0.0, 0.0)(images, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(output), images, atol=1e-3)


def test_flip_with_probability_one_mirrors():
    images = random_images()
    output = keras.ops.convert_to_numpy(warps.RandomAffine(flip_probability=1.0)(images, training=True))
    np.testing.assert_allclose(output, images[:, :, ::-1], atol=1e-3)


def test_augmentation_passes_through_at_inference_and_gives_float_images_like_keras_layers():
    augment = pipeline.augmentation(**pipeline.LESSON3_AUGMENTATION, seed=0)
    images = random_images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment(images, training=False)), images)
    changed = keras.ops.convert_to_numpy(augment(images, training=True))
    assert changed.shape == images.shape and changed.dtype == np.float32
    assert not np.allclose(changed, images, atol=1)
    for training in (True, False):  # uint8 in (as image_dataset caches pixels), float32 out
        single = warps.RandomAffine(1.0, 0.1, contrast=0.2)(images[0].astype("uint8"), training=training)
        assert single.shape == images[0].shape and keras.ops.dtype(single) == "float32"


def test_random_affine_refuses_bad_ranges():
    with pytest.raises(ValueError, match="rotation"):
        warps.RandomAffine(rotation=1.5)
    with pytest.raises(ValueError, match="fill_mode"):
        warps.RandomAffine(fill_mode="wrap")


def test_augmentation_inside_a_saved_model(tmp_path):
    model = keras.Sequential([keras.Input((24, 24, 3)), pipeline.augmentation(**pipeline.LESSON3_AUGMENTATION),
                              keras.layers.Rescaling(1 / 255), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    images = random_images(2, 24, 24)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("augment_name", ["ours", "stock keras layer"])
def test_augmented_batches(zoo, augment_name):
    augment = (pipeline.augmentation(**pipeline.LESSON3_AUGMENTATION, seed=0) if augment_name == "ours"
               else keras.layers.RandomRotation(0.1, seed=0))
    plain = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False)
    augmented = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False, augment=augment)
    for (x, y), (x_plain, y_plain) in zip(augmented, plain):
        assert x.shape == x_plain.shape and x.dtype == tf.float32
        np.testing.assert_array_equal(y.numpy(), y_plain.numpy())
        assert float(tf.reduce_min(x)) >= -1e-3 and float(tf.reduce_max(x)) <= 255 + 1e-3
        assert not np.allclose(x.numpy(), x_plain.numpy(), atol=1)
    first, second = (np.concatenate([x.numpy() for x, _ in augmented]) for _ in range(2))
    assert not np.allclose(first, second, atol=1), "augmentation should differ between epochs"


DISTRIBUTED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from utils import pipeline
    dataset = pipeline.image_dataset(sys.argv[1], 32, batch_size=4, seed=0,
                                     augment=pipeline.augmentation(**pipeline.LESSON3_AUGMENTATION))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((32, 32, 3)), pipeline.augmentation(flip=True, rotation=0.05),
            keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(dataset.class_names))])
        model.compile(optimizer="adam", metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dataset, epochs=2, verbose=0)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"]}))
""")


def test_model_fit_under_a_mirrored_strategy(zoo):
    # Logical devices must be set before TensorFlow starts, so this runs in a fresh process.
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(zoo)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2
    assert len(figures["loss"]) == 2 and all(np.isfinite(figures["loss"]))
