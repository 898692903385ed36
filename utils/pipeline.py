"""Input pipelines: folders of images to augmented tf.data batches (lesson 3 writes the tf.data steps out once)."""

import pathlib

import keras
import tensorflow as tf

from utils import images as image_files
from utils import paths

_no_autograph = tf.autograph.experimental.do_not_convert  # map functions are plain graph code: skip AutoGraph


def _class_folders(folder):
    """Checks the folder has class subfolders of images, with a useful error if not."""
    if not folder.is_dir():
        raise ValueError(f"no folder {folder}: download the data first (for dogs vs cats: "
                         "`python -m utils.data download dogscats`, then "
                         "`python -m utils.data organize data/dogscats`), "
                         "or draw a stand-in with `python -m utils.data synth toy_pets DEST`")
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        loose = [entry for entry in folder.iterdir() if image_files.is_image_name(entry)]
        hint = (f"it holds {len(loose)} loose images, like Kaggle's flat download: sort them with "
                f"`python -m utils.data organize {folder}`" if loose else "it is empty")
        raise ValueError(f"{folder} has no class subfolders (one folder of images per class); {hint}")
    if not any(image_files.is_image_name(path) for name in classes for path in (folder / name).rglob("*")):
        raise ValueError(f"no images ({', '.join(image_files.IMAGE_EXTENSIONS)}) in the class folders of {folder} "
                         f"({', '.join(classes)}): check the path, or organize the data again")
    return classes


def image_dataset(folder, image_size=(150, 150), batch_size=32, augment=None, shuffle=True, cache=True,
                  seed=None, shuffle_buffer=None, interpolation="bilinear"):
    """Reads a folder of class subfolders as batches for `model.fit`: decode and cache, shuffle, augment, prefetch.

    Args:
        folder: a folder with one subfolder of images per class (relative paths start at the kit's root folder).
        image_size: (height, width) to resize to, or one number for squares.
        augment: a layer or callable applied to each batch with `training=True`, or None.
        shuffle: reshuffle every epoch (False for validation and test data: predictions line up with `file_paths`).
        cache: True to keep decoded images in memory, False to decode them again every epoch.
        shuffle_buffer: images in the shuffle buffer (default: all of them).
        interpolation: the `tf.image.resize` method ("bilinear", "area", ...).

    Returns:
        A `tf.data.Dataset` of float32 images (batch, height, width, 3) with pixel values 0-255 and int32 class ids
        (alphabetical order of the class folders), carrying `class_names`, `class_counts`, `file_paths`,
        `num_images`, `shuffled` and `batch_size`.
    """
    folder = paths.resolve(folder)
    class_names = _class_folders(folder)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    images = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", class_names=class_names, batch_size=None,
        image_size=tuple(image_size), shuffle=False, interpolation=interpolation, verbose=False)
    file_paths = list(images.file_paths)
    orientations = [image_files.exif_orientation(path) for path in file_paths]  # reads headers only
    if (sideways := sum(orientation >= 5 for orientation in orientations)) and image_size[0] != image_size[1]:
        raise ValueError(f"photos in {folder} ({sideways}) are stored on their side (EXIF turns them upright), which "
                         "this pipeline turns only at a square image_size: give image_size as one number.")
    # Flipping commutes with resizing, and so does a quarter turn to a square: photos are turned once resized.
    if any(orientation != 1 for orientation in orientations):
        turns = tf.data.Dataset.from_tensor_slices(tf.constant(orientations, tf.int32))
        images = tf.data.Dataset.zip((images, turns)).map(
            _no_autograph(lambda pair, orientation: (image_files.upright(pair[0], orientation), pair[1])),
            num_parallel_calls=tf.data.AUTOTUNE)
    classes = [pathlib.Path(path).relative_to(folder).parts[0] for path in file_paths]
    class_counts = {name: classes.count(name) for name in class_names}

    dataset = images.map(_no_autograph(lambda x, y: (tf.cast(tf.round(tf.clip_by_value(x, 0, 255)), tf.uint8), y)),
                         num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer or len(file_paths), seed=seed, reshuffle_each_iteration=True)

    def to_float(x, y):  # then `augment` (Keras layers) on each batch of cached uint8 pixels
        x = tf.cast(x, tf.float32)
        return (x if augment is None else tf.cast(augment(x, training=True), tf.float32)), y

    dataset = dataset.batch(batch_size).map(_no_autograph(to_float), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False  # AUTOTUNE is then one call per core; the autotuner slowed epoch ends (2 cores)
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
    dataset.class_names, dataset.class_counts = class_names, class_counts
    dataset.file_paths, dataset.num_images = file_paths, len(file_paths)
    dataset.shuffled, dataset.batch_size = shuffle, batch_size
    return dataset
