"""Input pipelines: folders of images to fast, augmented tf.data batches (lesson 3).

`image_dataset` reads a folder of class subfolders (for example
`data/dogscats/train/{cats,dogs}`) with `keras.utils.image_dataset_from_directory`,
decodes and resizes each image once, caches it, then shuffles, batches,
augments and prefetches on every epoch. `augmentation` builds the random
flips, rotations, zooms, shears, shifts and contrast changes of lesson 3 as
Keras layers: `RandomAffine` composes all the geometric ones into a single
warp per image, which costs one resampling instead of one per layer.
"""

import contextlib
import math
import os
import pathlib
import threading

import keras
import tensorflow as tf

from utils import paths

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# The augmentation lesson 3 trains with (and benchmarks/pipeline.py measures).
LESSON3_AUGMENTATION = dict(flip=True, rotation=0.1, zoom=0.2, shear=0.2, translation=0.1, contrast=0.2)
FILL_MODES = ("reflect", "nearest")


# Set while image_dataset builds its tf.data graph: RandomAffine then runs its
# warp XLA-compiled, on batches padded to this size (XLA compiles once per shape).
_PIPELINE = threading.local()


@contextlib.contextmanager
def _compiled_warps(batch_size):
    _PIPELINE.batch_size = batch_size
    try:
        yield
    finally:
        _PIPELINE.batch_size = None


@tf.function(jit_compile=True)
def _xla_affine_warp(images, transforms, fill_mode):
    return affine_warp(images, transforms, fill_mode)


def _fold(coordinates, size, fill_mode):
    """Maps sample coordinates outside [0, size - 1] back inside the image."""
    if fill_mode == "reflect":  # (d c b a | a b c d | d c b a), mirrored about the pixel edges
        coordinates = keras.ops.mod(coordinates + 0.5, 2 * size)
        coordinates = keras.ops.where(coordinates >= size, 2 * size - coordinates, coordinates) - 0.5
    return keras.ops.clip(coordinates, 0, size - 1)


def affine_warp(images, transforms, fill_mode="reflect"):
    """Warps each image of a batch by its own affine transform, with bilinear sampling.

    The same warp as `keras.ops.image.affine_transform` (a test checks it),
    written with gathers so that XLA can compile it: TensorFlow's own kernel
    has no XLA version and is several times slower on a CPU.

    Args:
        images: a batch (batch, height, width, channels), any numeric dtype.
        transforms: (batch, 8) rows `[a0, a1, a2, b0, b1, b2, 0, 0]` mapping
            each output pixel (x, y) to the input point
            (a0 x + a1 y + a2, b0 x + b1 y + b2) it samples.
        fill_mode: "reflect" or "nearest", for points outside the image.

    Returns:
        float32 images of the same shape.
    """
    shape = keras.ops.shape(images)
    batch_size, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows, columns = keras.ops.meshgrid(keras.ops.arange(height, dtype="float32"),
                                       keras.ops.arange(width, dtype="float32"), indexing="ij")
    a = [transforms[:, i, None, None] for i in range(6)]
    sample_x = _fold(a[0] * columns + a[1] * rows + a[2], keras.ops.cast(width, "float32"), fill_mode)
    sample_y = _fold(a[3] * columns + a[4] * rows + a[5], keras.ops.cast(height, "float32"), fill_mode)
    x0, y0 = keras.ops.floor(sample_x), keras.ops.floor(sample_y)
    weight_x, weight_y = (sample_x - x0)[..., None], (sample_y - y0)[..., None]
    x0, y0 = keras.ops.cast(x0, "int32"), keras.ops.cast(y0, "int32")
    x1, y1 = keras.ops.minimum(x0 + 1, width - 1), keras.ops.minimum(y0 + 1, height - 1)
    pixels = keras.ops.reshape(images, (-1, channels))
    first = (keras.ops.arange(batch_size, dtype="int32") * height * width)[:, None, None]

    def pick(y, x):
        return keras.ops.cast(keras.ops.take(pixels, first + y * width + x, axis=0), "float32")

    top = pick(y0, x0) * (1 - weight_x) + pick(y0, x1) * weight_x
    bottom = pick(y1, x0) * (1 - weight_x) + pick(y1, x1) * weight_x
    return top * (1 - weight_y) + bottom * weight_y


@keras.saving.register_keras_serializable(package="course")
class RandomAffine(keras.layers.Layer):
    """Random flip, rotation, zoom, shear and shift as one affine warp per image.

    Args:
        flip_probability: chance of mirroring an image left to right.
        rotation: largest rotation, as a fraction of a full turn (0.1 is 36
            degrees either way), like `keras.layers.RandomRotation`.
        zoom: largest zoom in or out, as a fraction (0.2 samples a scale
            between 0.8 and 1.2, separately for width and height).
        shear: largest horizontal shear factor (x moves by up to shear * y).
        translation: largest shift, as a fraction of the width and height.
        fill_mode: how to fill pixels from outside the image; one of
            "reflect" (mirror the image at its edges) or "nearest" (repeat
            the edge pixels).
        seed: random seed, for repeatable augmentation.

    Takes and returns a batch (batch, height, width, channels) or one image,
    unchanged in shape and dtype. At inference (`training=False`) it passes
    images through untouched.
    """

    def __init__(self, flip_probability=0.0, rotation=0.0, zoom=0.0, shear=0.0, translation=0.0,
                 fill_mode="reflect", seed=None, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"RandomAffine: fill_mode={fill_mode!r}; use one of {FILL_MODES}")
        for name, value in dict(rotation=rotation, zoom=zoom, shear=shear, translation=translation).items():
            if not 0 <= value < 1:
                raise ValueError(f"RandomAffine: {name}={value} is out of range; use a fraction in [0, 1)")
        if not 0 <= flip_probability <= 1:
            raise ValueError(f"RandomAffine: flip_probability={flip_probability} must be between 0 and 1")
        self.flip_probability, self.rotation, self.zoom = float(flip_probability), rotation, zoom
        self.shear, self.translation, self.fill_mode, self.seed = shear, translation, fill_mode, seed
        self.generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch_size, height, width):
        """Samples one output-to-input transform per image, as rows of 8 numbers.

        `keras.ops.image.affine_transform` maps each output pixel (x, y) to
        the input point it samples, so these are the inverse warps.
        """
        def uniform(limit):
            return keras.random.uniform((batch_size,), -limit, limit, seed=self.generator)

        flip = keras.random.uniform((batch_size,), seed=self.generator) < self.flip_probability
        flip = keras.ops.where(flip, -1.0, 1.0)
        angle = uniform(self.rotation) * 2 * math.pi
        zoom_x, zoom_y = 1 + uniform(self.zoom), 1 + uniform(self.zoom)
        shear = uniform(self.shear)
        cos, sin = keras.ops.cos(angle), keras.ops.sin(angle)
        height, width = keras.ops.cast(height, "float32"), keras.ops.cast(width, "float32")
        # Linear part: rotation @ shear @ zoom @ flip, about the image centre.
        a00, a01 = cos * zoom_x * flip, (cos * shear - sin) * zoom_y
        a10, a11 = sin * zoom_x * flip, (sin * shear + cos) * zoom_y
        centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
        shift_x, shift_y = uniform(self.translation) * width, uniform(self.translation) * height
        b0 = centre_x + shift_x - a00 * centre_x - a01 * centre_y
        b1 = centre_y + shift_y - a10 * centre_x - a11 * centre_y
        zeros = keras.ops.zeros_like(a00)
        return keras.ops.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)

    def call(self, inputs, training=True):
        if not training:
            return inputs
        images = inputs if len(inputs.shape) == 4 else keras.ops.expand_dims(inputs, 0)
        shape = keras.ops.shape(images)
        transforms = self.transforms(shape[0], shape[1], shape[2])
        batch_size = getattr(_PIPELINE, "batch_size", None)
        if batch_size and keras.backend.backend() == "tensorflow":  # inside image_dataset's tf.data graph
            count, padding = tf.shape(images)[0], [[0, batch_size - tf.shape(images)[0]]]
            warped = _xla_affine_warp(tf.pad(images, padding + [[0, 0]] * 3), tf.pad(transforms, padding + [[0, 0]]),
                                      self.fill_mode)[:count]
        else:
            warped = affine_warp(images, transforms, self.fill_mode)
        warped = keras.ops.cast(warped, inputs.dtype)
        return warped if len(inputs.shape) == 4 else warped[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "flip_probability": self.flip_probability, "rotation": self.rotation,
                "zoom": self.zoom, "shear": self.shear, "translation": self.translation,
                "fill_mode": self.fill_mode, "seed": self.seed}


def augmentation(flip=True, rotation=0.0, zoom=0.0, shear=0.0, translation=0.0, contrast=0.0, seed=None):
    """Builds random augmentation layers, for `image_dataset` or inside a model (lesson 3).

    Args:
        flip: mirror half of the images left to right.
        rotation, zoom, shear, translation: ranges for `RandomAffine`.
        contrast: largest contrast change, as a fraction (0.2: factor 0.8-1.2),
            for pixels in 0-255 (`keras.layers.RandomContrast`); 0 for none.
        seed: random seed, for repeatable augmentation.

    Returns:
        A `keras.Sequential` named "augmentation". Lesson 3's choice is
        `augmentation(**LESSON3_AUGMENTATION)`.
    """
    layers = [RandomAffine(0.5 if flip else 0.0, rotation, zoom, shear, translation, seed=seed)]
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")


def _class_folders(folder):
    """Checks the folder has class subfolders of images, with a useful error if not."""
    if not folder.is_dir():
        raise ValueError(f"no folder {folder}: download the data first (for dogs vs cats: "
                         "`python -m utils.data download dogscats`, then `python -m utils.data organize`), "
                         "or draw a stand-in with `python -m utils.synth toy_pets DEST`")
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        loose = [entry for entry in folder.iterdir() if entry.suffix.lower() in IMAGE_SUFFIXES]
        hint = (f"it holds {len(loose)} loose images, like Kaggle's flat download: sort them with "
                "`python -m utils.data organize SOURCE DEST`" if loose else "it is empty")
        raise ValueError(f"{folder} has no class subfolders (one folder of images per class); {hint}")
    if not any(path.suffix.lower() in IMAGE_SUFFIXES for name in classes for path in (folder / name).rglob("*")):
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders of {folder} "
                         f"({', '.join(classes)}): check the path, or organize the data again")
    return classes


def image_dataset(folder, image_size=(150, 150), batch_size=32, augment=None, shuffle=True, cache=True,
                  seed=None, shuffle_buffer=None):
    """Reads a folder of class subfolders as batches for `model.fit` (lesson 3).

    Each image is decoded and resized (bilinear) once, rounded to 0-255
    integers as an image viewer would, and cached. Every epoch then shuffles
    (after the cache, so each epoch sees a new order), batches, augments
    (per batch, in parallel) and prefetches. Works the same on one device
    and under a `tf.distribute` strategy.

    Args:
        folder: a folder with one subfolder of images per class, such as
            `data/dogscats/train` holding `cats/` and `dogs/`; relative paths
            are taken from the kit's root folder.
        image_size: (height, width) to resize to, or one number for squares.
        batch_size: images per batch.
        augment: a layer or callable applied to each batch with
            `training=True` (for example `augmentation(**LESSON3_AUGMENTATION)`),
            or None.
        shuffle: reshuffle the images every epoch (use False for validation
            and test data, so predictions line up with `file_paths`).
        cache: True to keep decoded images in memory (about 67 KB each at
            150x150), a file path to cache them on disk (for sets too big
            for memory), or False to decode every epoch. The cache is
            complete after the first full epoch.
        seed: random seed for the shuffle order.
        shuffle_buffer: images in the shuffle buffer (default: all of them).

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 images of shape
        (batch, height, width, 3) with pixel values 0-255 (models rescale
        them), and int32 class ids (0, 1, ... following the alphabetical
        order of the class folders). It also carries `class_names`,
        `class_counts` (a dict), `file_paths` (in dataset order when
        `shuffle=False`), `num_images`, `shuffled` and `batch_size`.
    """
    folder = paths.resolve(folder)
    class_names = _class_folders(folder)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    images = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", class_names=class_names, batch_size=None,
        image_size=tuple(image_size), shuffle=False, interpolation="bilinear", verbose=False)
    file_paths = list(images.file_paths)
    class_counts = {name: 0 for name in class_names}
    for path in file_paths:
        class_counts[pathlib.Path(path).relative_to(folder).parts[0]] += 1

    dataset = images.map(lambda x, y: (tf.cast(tf.round(tf.clip_by_value(x, 0, 255)), tf.uint8), y),
                         num_parallel_calls=tf.data.AUTOTUNE)
    if cache is True:
        dataset = dataset.cache()
    elif isinstance(cache, (str, os.PathLike)):
        cache = paths.resolve(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        dataset = dataset.cache(str(cache))
    elif cache is not False:
        raise ValueError(f"cache must be True (memory), False, or a file path (disk), got {cache!r}")
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer or len(file_paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is None:
        dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        with _compiled_warps(batch_size):  # RandomAffine layers warp with XLA here
            dataset = dataset.map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.class_names, dataset.class_counts = class_names, class_counts
    dataset.file_paths, dataset.num_images = file_paths, len(file_paths)
    dataset.shuffled, dataset.batch_size = shuffle, batch_size
    return dataset
