"""VGG16 with its preprocessing inside, and its bottleneck features cached on disk (lesson 4)."""

import dataclasses
import hashlib
import json
import os
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf
import tqdm

from utils import downloads, paths, safely


class WeightsUnavailable(RuntimeError):
    """The ImageNet weights are not cached and cannot be downloaded (no internet)."""


def keras_models():
    """Where Keras keeps (and looks for) the weights and class names it downloads: $KERAS_HOME/models."""
    return pathlib.Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"


@keras.saving.register_keras_serializable(package="course")
class VggPreprocess(keras.layers.Layer):
    """`keras.applications.vgg16.preprocess_input` as a layer: RGB 0-255 in, BGR minus the ImageNet mean out."""

    def call(self, inputs):
        return keras.applications.vgg16.preprocess_input(keras.ops.cast(inputs, "float32"))


def vgg16(weights="imagenet", image_size=224, include_top=False):
    """Builds VGG16 with its preprocessing inside: it takes RGB images with pixels 0-255 (lesson 4).

    Args:
        weights: "imagenet", None for random weights, or the path of a weights file.
        image_size: height and width; ignored with the top and pretrained weights (224).
        include_top: keep the 1000-way ImageNet classifier.

    Returns:
        A `keras.Model` named "vgg16" whose first layer after the input is `VggPreprocess` ("preprocess").

    Raises:
        WeightsUnavailable: the ImageNet weights are not cached and cannot be downloaded.
    """
    if include_top and weights is not None:
        image_size = 224
    elif image_size < 32:
        raise ValueError(f"image_size={image_size}: VGG16 needs images of at least 32x32 pixels "
                         "(224 is what it was trained on).")
    inputs = keras.Input((image_size, image_size, 3), name="images")
    try:
        return keras.applications.VGG16(include_top=include_top, weights=weights,
                                        input_tensor=VggPreprocess(name="preprocess")(inputs))
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...")
        if weights != "imagenet" or "URL fetch failure" not in str(error):
            raise
        name, size = downloads.VGG16_WEIGHTS[include_top]
        raise WeightsUnavailable(
            f"VGG16's ImageNet weights ({name}, {size}) are not in {keras_models()} "
            f"and cannot be downloaded here ({error}). On a machine with internet, run "
            f"`python -c \"import keras; keras.applications.VGG16(include_top={include_top})\"` "
            f"once, or fetch the file at that URL and copy it to {keras_models() / name} "
            "(Keras checks its checksum). Or pass weights=None to run with random weights, "
            "whose results mean nothing.") from error


@dataclasses.dataclass
class Features:
    """What `bottleneck_features` returns: each image's features, class index and file, in the same order."""

    features: np.ndarray  # (images, ...) float16, memory-mapped from disk
    labels: np.ndarray
    file_paths: list
    class_names: list
    seconds: float  # the time this call spent extracting: 0 when reused
    reused: bool  # the cache on disk was up to date
    extraction_seconds: float  # how long the extraction took when it was done


def fingerprint(base, dataset, file_paths):
    """A digest of what features depend on: the files (paths, sizes, times), image size, base weights."""
    digest = hashlib.sha1()
    for path in file_paths:
        status = os.stat(path)
        digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    digest.update(f"{dataset.element_spec[0].shape}|{base.name}|{base.output_shape}".encode())
    for weight in base.weights:
        digest.update(np.asarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def bottleneck_features(base, dataset, path, progress=True):
    """Runs `base` once over a dataset and caches the features in folder `path` (lesson 4).

    A later call with the same files, image size and base reads them back.

    Args:
        base: the frozen convolutional base, e.g. `vgg16("imagenet", 224)`.
        dataset: a batched, unshuffled, unaugmented dataset of (images, int labels) that
            lists its `file_paths`, e.g. `pipeline.image_dataset(..., shuffle=False)`.

    Returns:
        A `Features`.
    """
    file_paths = [str(file) for file in getattr(dataset, "file_paths", None) or []]
    if not file_paths:
        raise ValueError("bottleneck_features needs a dataset that lists its files: make it with "
                         "pipeline.image_dataset(folder, ..., shuffle=False).")
    path, key = paths.resolve(path), fingerprint(base, dataset, file_paths)
    info_file = path / "info.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    if info.get("fingerprint") == key:
        return Features(np.load(path / "features.npy", mmap_mode="r"), np.load(path / "labels.npy"),
                        info["file_paths"], info["class_names"], 0.0, True, info["seconds"])
    class_names = list(getattr(dataset, "class_names", None) or [])
    parents = [pathlib.Path(file).parent.name for file in file_paths]
    expected = None  # each file's class index from its class folder, when that can be told
    if class_names and set(parents) <= set(class_names):
        expected = np.array([class_names.index(parent) for parent in parents])
    path.mkdir(parents=True, exist_ok=True)
    info_file.unlink(missing_ok=True)  # the old cache no longer matches: mark it incomplete first
    partial, labels, count = path / "features.part.npy", np.empty(len(file_paths), np.int64), 0
    header = {"descr": np.dtype(np.float16).str, "fortran_order": False,
              "shape": (len(file_paths), *base.output_shape[1:])}
    start = time.perf_counter()
    try:
        with open(partial, "wb") as file, tqdm.tqdm(total=len(file_paths), desc=f"features {path.name}",
                                                     unit="photo", disable=not progress) as bar:
            # The .npy header, then each batch with a plain write: the features do not stay in our memory.
            np.lib.format.write_array_header_1_0(file, header)
            for images, batch_labels in dataset:
                batch_labels = np.asarray(batch_labels)
                end = count + len(batch_labels)
                if end > len(file_paths) or (expected is not None and (expected[count:end] != batch_labels).any()):
                    raise ValueError("the dataset's labels do not follow its file_paths: it is shuffled. "
                                     "Make it with shuffle=False (and no augmentation) for features.")
                file.write(keras.ops.convert_to_numpy(base.predict_on_batch(images)).astype(np.float16).tobytes())
                labels[count:end] = batch_labels
                count = end
                bar.update(len(batch_labels))
        if count != len(file_paths):
            raise ValueError(f"the dataset gave {count} images but lists {len(file_paths)} files.")
    except BaseException:  # Ctrl-C, a full disk, a shuffled dataset: no partial file left taking the space
        partial.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - start
    os.replace(partial, path / "features.npy")
    np.save(path / "labels.npy", labels)
    safely.write_text(info_file, json.dumps({"fingerprint": key, "class_names": class_names,
                                            "seconds": seconds, "file_paths": file_paths}))
    return Features(np.load(path / "features.npy", mmap_mode="r"), labels, file_paths, class_names,
                    seconds, False, seconds)


def features_dataset(features, batch_size=32, shuffle=True, seed=None):
    """Batches cached `Features` for training a head, reading them from disk batch by batch.

    Returns:
        A `tf.data.Dataset` of (float32 features, int labels) carrying
        `class_names`, `file_paths` (in order when not shuffled), `num_images`.
    """
    array, labels = features.features, features.labels
    generator = np.random.default_rng(seed)

    def batches():
        order = generator.permutation(len(labels)) if shuffle else np.arange(len(labels))
        for start in range(0, len(order), batch_size):
            chunk = np.sort(order[start:start + batch_size])  # sorted: reads go forward on disk
            yield np.asarray(array[chunk], dtype=np.float32), labels[chunk]

    signature = (tf.TensorSpec((None, *array.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int64))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(-(-len(labels) // batch_size))).prefetch(2)
    dataset.class_names, dataset.file_paths = features.class_names, features.file_paths
    dataset.num_images, dataset.shuffled = len(labels), shuffle
    return dataset


def imagenet_top5(model, images):
    """ImageNet's five most likely classes for each image, as [(name, probability), ...].

    Args:
        model: `vgg16("imagenet", include_top=True)`.
        images: (batch, 224, 224, 3) RGB pixels 0-255.
    """
    probabilities = keras.ops.convert_to_numpy(model.predict_on_batch(np.asarray(images, "float32")))
    try:  # the class names come from a small file Keras downloads once, next to the weights
        decoded = keras.applications.vgg16.decode_predictions(probabilities, top=5)
    except Exception as error:
        if "URL fetch failure" not in str(error):
            raise
        raise WeightsUnavailable(
            f"ImageNet's class names (imagenet_class_index.json) are not in {keras_models()} "
            f"and cannot be downloaded here ({error}).") from error
    return [[(name, float(probability)) for _, name, probability in row] for row in decoded]
