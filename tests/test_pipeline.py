"""utils.pipeline: decoded images against PIL, batches, caching, augmentation, tf.distribute."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from utils import pipeline, synth

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


@pytest.mark.parametrize("cache", [True, False])
def test_cache_keeps_the_first_decode(tmp_path, cache):
    write_images(tmp_path / "data" / "things", [(64, 64)] * 2)
    dataset = pipeline.image_dataset(tmp_path / "data", 32, batch_size=2, shuffle=False, cache=cache)
    before = np.concatenate([x.numpy() for x, _ in dataset])  # a cache is kept after a whole epoch
    Image.new("RGB", (64, 64), (255, 0, 0)).save(dataset.file_paths[0])  # our own test file
    after = np.concatenate([x.numpy() for x, _ in dataset])
    if cache:
        np.testing.assert_array_equal(before, after)
    else:
        assert not np.array_equal(before, after)
        np.testing.assert_allclose(after[0], np.broadcast_to([255, 0, 0], (32, 32, 3)), atol=3)


def test_bad_folders_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="download"):
        pipeline.image_dataset(tmp_path / "missing", 32)
    write_images(tmp_path / "flat", [(40, 40)] * 2)
    with pytest.raises(ValueError, match="organize"):
        pipeline.image_dataset(tmp_path / "flat", 32)
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        pipeline.image_dataset(tmp_path / "empty", 32)


def random_images(batch=4, height=37, width=29, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def stock_augmentation():
    """Augmentation as lessons 3 and 4 write it: stock Keras layers."""
    return keras.Sequential([keras.layers.RandomFlip("horizontal", seed=0),
                             keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=0)])


def test_augmented_batches(zoo):
    plain = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False)
    augmented = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False, augment=stock_augmentation())
    for (x, y), (x_plain, y_plain) in zip(augmented, plain):
        assert x.shape == x_plain.shape and x.dtype == tf.float32
        np.testing.assert_array_equal(y.numpy(), y_plain.numpy())
        assert float(tf.reduce_min(x)) >= -1e-3 and float(tf.reduce_max(x)) <= 255 + 1e-3
        assert not np.allclose(x.numpy(), x_plain.numpy(), atol=1)
    first, second = (np.concatenate([x.numpy() for x, _ in augmented]) for _ in range(2))
    assert not np.allclose(first, second, atol=1), "augmentation should differ between epochs"


def test_augmentation_is_what_the_layers_do_to_the_cached_pixels(zoo):
    """A flip that always flips: each augmented batch is the plain batch, mirrored."""
    always = keras.layers.Lambda(lambda images: images[:, :, ::-1])
    plain = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False)
    mirrored = pipeline.image_dataset(zoo, 32, batch_size=4, shuffle=False, augment=always)
    for (x, _), (x_plain, _) in zip(mirrored, plain):
        np.testing.assert_array_equal(x.numpy(), x_plain.numpy()[:, :, ::-1])


DISTRIBUTED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from utils import hardware, pipeline

    two, one = hardware.detect(devices=["/cpu:0", "/cpu:1"]), hardware.detect()
    plain = pipeline.image_dataset(sys.argv[1], 32, batch_size=two.global_batch(2), shuffle=False)
    # each global batch of 4 reaches the two devices as 2 + 2 photos, together exactly the batch
    first = next(iter(two.strategy.experimental_distribute_dataset(plain)))
    shards = [shard.numpy() for shard in two.strategy.experimental_local_results(first[0])]
    whole = next(iter(plain))[0].numpy()
    def network():
        return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3, activation="tanh"), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(len(plain.class_names))])

    keras.utils.set_random_seed(0)
    start = network().get_weights()

    def train(hw):  # the same batches from the pipeline, on two devices or one: the same steps
        with hw.scope():
            model = network()
            model.set_weights(start)
            model.compile(optimizer=keras.optimizers.SGD(0.5),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(plain, epochs=2, verbose=0, shuffle=False)
        return model.get_weights(), history.history["loss"]

    (mirrored, loss), (single, _) = train(two), train(one)
    print(json.dumps({"replicas": two.replicas, "shards": [len(shard) for shard in shards],
                      "shards_are_the_batch": bool(np.array_equal(np.concatenate(shards), whole)), "loss": loss,
                      "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
                      "difference": max(float(np.abs(a - b).max()) for a, b in zip(mirrored, single))}))
""")


def test_two_devices_split_each_batch_and_train_as_one_device_does(zoo):
    # Logical devices must be set before TensorFlow starts, so this runs in a fresh process.
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(zoo)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2
    assert figures["shards"] == [2, 2] and figures["shards_are_the_batch"]
    assert len(figures["loss"]) == 2 and all(np.isfinite(figures["loss"]))
    assert figures["moved"] > 1e-3  # training changed the weights, so agreeing below means something
    assert figures["difference"] < 1e-4, figures
