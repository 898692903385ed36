"""Transfer learning with VGG16: cached bottleneck features and the seven-line classifier (lesson 4).

`Vgg16` rebuilds the 2017 fast.ai experience on Keras 3 without its hidden
side effects: `finetune` returns a new model (a frozen copy of the base and a
new head) instead of popping layers in place, and VGG16's own
`preprocess_input` is a layer inside every model, so raw 0-255 RGB images go
in and nobody can forget it. `bottleneck_features` runs the frozen base once
over a dataset and keeps the result on disk as a memory-mapped float16 array,
so a dense head then trains in seconds per epoch.
"""

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

from utils import evaluate, paths, training

WEIGHT_FILES = {False: ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "about 58 MB"),
                True: ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "about 528 MB")}
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"


class WeightsUnavailable(RuntimeError):
    """The ImageNet weights are not cached and cannot be downloaded (no internet)."""


def weights_file(include_top=False):
    """Where Keras keeps (and looks for) VGG16's ImageNet weights file."""
    home = pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras")).expanduser()
    return home / "models" / WEIGHT_FILES[include_top][0]


@keras.saving.register_keras_serializable(package="course")
class VggPreprocess(keras.layers.Layer):
    """`keras.applications.vgg16.preprocess_input` as a layer: RGB 0-255 in, BGR minus the ImageNet mean out."""

    def call(self, inputs):
        return keras.applications.vgg16.preprocess_input(keras.ops.cast(inputs, "float32"))

    def compute_output_shape(self, input_shape):
        return input_shape


def _image_shape(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if len(image_size) != 2 or min(image_size) < 32:
        raise ValueError(f"image_size={image_size}: VGG16 needs images of at least 32x32 pixels "
                         "(224 is what it was trained on).")
    return (*image_size, 3)


def vgg16(weights="imagenet", image_size=224, include_top=False):
    """Builds VGG16 with its preprocessing inside: it takes RGB images with pixels 0-255.

    Args:
        weights: "imagenet" (Keras downloads and checksums them once into
            `~/.keras/models/`), None for random weights (tests, offline
            smoke runs) or the path of a weights file.
        image_size: height and width (or one number); ignored with the top,
            which needs 224.
        include_top: keep the 1000-way ImageNet classifier.

    Returns:
        A `keras.Model` named "vgg16": input, `VggPreprocess`, block1_conv1
        ... block5_pool (and the ImageNet head with `include_top`).

    Raises:
        WeightsUnavailable: the ImageNet weights are not cached and the
            download failed; the message says where to put the file by hand.
    """
    shape = (224, 224, 3) if include_top else _image_shape(image_size)
    inputs = keras.Input(shape, name="images")
    try:
        return keras.applications.VGG16(include_top=include_top, weights=weights,
                                        input_tensor=VggPreprocess(name="preprocess")(inputs))
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...")
        if weights != "imagenet" or "URL fetch failure" not in str(error):
            raise
        name, size = WEIGHT_FILES[include_top]
        raise WeightsUnavailable(
            f"VGG16's ImageNet weights ({name}, {size}) are not in {weights_file(include_top).parent} "
            f"and cannot be downloaded here ({error}). On a machine with internet, run "
            f"`python -c \"import keras; keras.applications.VGG16(include_top={include_top})\"` "
            f"once, or fetch {WEIGHTS_URL}{name} and copy it to {weights_file(include_top)} "
            "(Keras checks its checksum). Or pass weights=None to run with random weights, "
            "whose results mean nothing.") from error


def make_head(feature_shape, num_classes, hidden_units=256, dropout_rate=0.5, seed=None):
    """The new classifier on top of the convolutional base: Flatten, Dense + ReLU, Dropout, softmax.

    Args:
        feature_shape: shape of one image's features, e.g. (7, 7, 512) at 224 pixels.
        num_classes: output units.
        hidden_units: units of the hidden dense layer.
        dropout_rate: share of hidden units dropped while training.
        seed: seed for the initial weights and the dropout.

    Returns:
        A `keras.Sequential` named "head".
    """
    initializer = keras.initializers.GlorotUniform(seed)
    return keras.Sequential([
        keras.Input(tuple(feature_shape), name="features"),
        keras.layers.Flatten(),
        keras.layers.Dense(hidden_units, activation="relu", kernel_initializer=initializer),
        keras.layers.Dropout(dropout_rate, seed=seed),
        keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=initializer),
    ], name="head")


def compile_classifier(model, learning_rate):
    """Compiles a classifier with Adam, sparse categorical cross-entropy and accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Vgg16:
    """The seven-line classifier: a pretrained VGG16 with a new head (lesson 4).

        vgg = transfer.Vgg16(weights="imagenet", image_size=224)
        vgg.finetune(train_ds.class_names)
        vgg.fit(train_ds, valid_ds, epochs=3)
        vgg.unfreeze(from_layer="block5_conv1", learning_rate=1e-5)
        vgg.fit(train_ds, valid_ds, epochs=3)
        predictions = vgg.predict(valid_ds)

    Attributes:
        base: VGG16's convolutional base (preprocessing included). It is never
            trained: `finetune` works on a copy.
        model: the classifier `finetune` made, None before.
        class_names: the class names given to `finetune`.
    """

    def __init__(self, weights="imagenet", image_size=224):
        self.weights, self.image_size = weights, image_size
        self.base = vgg16(weights, image_size)
        self.model, self.class_names = None, None

    def finetune(self, classes, hidden_units=256, dropout_rate=0.5, learning_rate=1e-3, seed=None):
        """Makes a new classifier: a frozen copy of the base and a new head, compiled.

        Args:
            classes: the number of classes, or their names.
            hidden_units, dropout_rate, seed: for `make_head`.
            learning_rate: Adam's learning rate for the head.

        Returns:
            The new `keras.Model`, also kept as `self.model`.
        """
        if isinstance(classes, int):
            num_classes, self.class_names = classes, [str(index) for index in range(classes)]
        else:
            self.class_names = [str(name) for name in classes]
            num_classes = len(self.class_names)
        if num_classes < 2:
            raise ValueError(f"finetune needs at least 2 classes, got {classes!r}.")
        base = keras.models.clone_model(self.base)
        base.set_weights(self.base.get_weights())
        base.trainable = False
        inputs = keras.Input(self.base.input_shape[1:], name="images")
        # training=False: BatchNorm-style layers in a base would keep using their
        # ImageNet statistics even after `unfreeze` (VGG16 has none; most modern bases do).
        features = base(inputs, training=False)
        outputs = make_head(features.shape[1:], num_classes, hidden_units, dropout_rate, seed)(features)
        self.model = compile_classifier(keras.Model(inputs, outputs, name="vgg16_finetuned"),
                                        learning_rate)
        return self.model

    def _require_model(self):
        if self.model is None:
            raise ValueError("call vgg.finetune(class_names) first: it adds the new head.")
        return self.model

    def fit(self, train_ds, valid_ds, epochs, **kwargs):
        """Trains the classifier with `training.fit` (early stopping, checkpoints, ...).

        Returns:
            A `training.TrainingRun`.
        """
        return training.fit(self._require_model(), train_ds, valid_ds, epochs, **kwargs)

    def predict(self, images):
        """Class probabilities for a batch of images, or `evaluate.Predictions` for a dataset.

        Args:
            images: an array (batch, height, width, 3) of RGB pixels 0-255, or
                a batched dataset of (images, labels).
        """
        model = self._require_model()
        if isinstance(images, tf.data.Dataset):
            return evaluate.predict(model, images, self.class_names)
        return keras.ops.convert_to_numpy(model.predict_on_batch(np.asarray(images, "float32")))

    def unfreeze(self, from_layer="block5_conv1", learning_rate=1e-5):
        """Lets the base's layers from `from_layer` on train too, and recompiles.

        Args:
            from_layer: the first base layer to train; "block5_conv1" trains
                the last convolutional block and nothing below it.
            learning_rate: Adam's learning rate, small so the pretrained
                filters are adjusted, not wiped out.

        Returns:
            The classifier, recompiled (its weights are kept).
        """
        model = self._require_model()
        base = model.get_layer("vgg16")
        names = [layer.name for layer in base.layers]
        if from_layer not in names:
            convolutions = [name for name in names if "conv" in name]
            raise ValueError(f"VGG16 has no layer {from_layer!r}; choose one of {convolutions}.")
        first = names.index(from_layer)
        base.trainable = True
        for index, layer in enumerate(base.layers):
            layer.trainable = index >= first
        return compile_classifier(model, learning_rate)


@dataclasses.dataclass
class Features:
    """What `bottleneck_features` returns.

    Attributes:
        features: (images, ...) float16 array, memory-mapped from disk.
        labels: the class index of each image, in the same order.
        file_paths: the image files, in the same order.
        class_names: the dataset's class names.
        seconds: time this call spent extracting (0 when reused).
        reused: True when the cache on disk was up to date.
        extraction_seconds: how long the extraction took when it was done.
    """

    features: np.ndarray
    labels: np.ndarray
    file_paths: list
    class_names: list
    seconds: float
    reused: bool
    extraction_seconds: float


def fingerprint(base, dataset):
    """A digest of what features depend on: the files (paths, sizes, times), image size, base weights."""
    file_paths = list(getattr(dataset, "file_paths", None) or [])
    if not file_paths:
        raise ValueError("bottleneck_features needs a dataset that lists its files: make it with "
                         "pipeline.image_dataset(folder, ..., shuffle=False).")
    digest = hashlib.sha1()
    for path in file_paths:
        status = os.stat(path)
        digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    digest.update(f"{dataset.element_spec[0].shape}|{base.name}|{base.output_shape}".encode())
    for weight in base.weights:
        digest.update(np.asarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def bottleneck_features(base, dataset, path, progress=True):
    """Runs `base` once over a dataset and caches the features on disk (lesson 4).

    Writes `features.npy` (float16, batch by batch, so memory does not grow
    with the dataset), `labels.npy` and `info.json` (files, classes and a
    fingerprint) into `path`. A later call with the same files, image size
    and base reads them back instead of computing them again.

    Args:
        base: the frozen convolutional base, e.g. `Vgg16(...).base`.
        dataset: a batched dataset of (images, labels) that is not shuffled
            and lists its `file_paths`, e.g. `pipeline.image_dataset(...,
            shuffle=False)`, without augmentation.
        path: the folder for the cache, e.g. `models/04_vgg16_finetune/features/train`.
        progress: show a progress bar.

    Returns:
        `Features`.
    """
    path = paths.resolve(path)
    key = fingerprint(base, dataset)
    info_file = path / "info.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        if info.get("fingerprint") == key:
            return Features(np.load(path / "features.npy", mmap_mode="r"), np.load(path / "labels.npy"),
                            info["file_paths"], info["class_names"], 0.0, True, info["seconds"])
    file_paths = [str(file) for file in dataset.file_paths]
    class_names = list(getattr(dataset, "class_names", None) or [])
    expected = _labels_from_paths(file_paths, class_names)
    path.mkdir(parents=True, exist_ok=True)
    info_file.unlink(missing_ok=True)  # the old cache no longer matches: mark it incomplete first
    shape = (len(file_paths), *base.output_shape[1:])
    partial = path / "features.part.npy"
    header = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=shape)
    offset, row_bytes = header.offset, int(np.prod(shape[1:])) * 2
    del header  # the file is sized; rows are written with plain writes, which do not stay in our memory
    labels, count, start = np.empty(len(file_paths), np.int64), 0, time.perf_counter()
    with open(partial, "r+b") as file, tqdm.tqdm(total=len(file_paths), desc="features",
                                                  disable=not progress, leave=False) as bar:
        for images, batch_labels in dataset:
            batch_labels = np.asarray(batch_labels)
            batch_labels = batch_labels.argmax(axis=1) if batch_labels.ndim == 2 else batch_labels
            if count + len(batch_labels) > len(file_paths) or (
                    expected is not None and (expected[count:count + len(batch_labels)] != batch_labels).any()):
                raise ValueError("the dataset's labels do not follow its file_paths: it is shuffled. "
                                 "Make it with shuffle=False (and no augmentation) for features.")
            output = keras.ops.convert_to_numpy(base.predict_on_batch(images)).astype(np.float16)
            file.seek(offset + count * row_bytes)
            file.write(output.tobytes())
            labels[count:count + len(batch_labels)] = batch_labels
            count += len(batch_labels)
            bar.update(len(batch_labels))
    if count != len(file_paths):
        raise ValueError(f"the dataset gave {count} images but lists {len(file_paths)} files.")
    seconds = time.perf_counter() - start
    os.replace(partial, path / "features.npy")
    np.save(path / "labels.npy", labels)
    paths.write_text(info_file, json.dumps({"fingerprint": key, "class_names": class_names,
                                            "seconds": seconds, "file_paths": file_paths}))
    return Features(np.load(path / "features.npy", mmap_mode="r"), labels, file_paths, class_names,
                    seconds, False, seconds)


def _labels_from_paths(file_paths, class_names):
    """Each file's class index from its class folder, or None when that cannot be told."""
    parents = [pathlib.Path(file).parent.name for file in file_paths]
    if not class_names or not set(parents) <= set(class_names):
        return None
    return np.array([class_names.index(parent) for parent in parents])


def features_dataset(features, batch_size=32, shuffle=True, seed=None):
    """Batches cached features for training a head, reading them from disk batch by batch.

    Args:
        features: a `Features` from `bottleneck_features`.
        batch_size: images per batch.
        shuffle: a new order every epoch (for training; False for validation).
        seed: seed for the order.

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
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-len(labels) // batch_size)))
    dataset = dataset.prefetch(2)
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
            f"ImageNet's class names (imagenet_class_index.json) are not in {weights_file().parent} "
            f"and cannot be downloaded here ({error}).") from error
    return [[(name, float(probability)) for _, name, probability in row] for row in decoded]
