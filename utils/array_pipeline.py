"""In-memory images to augmented tf.data batches (lesson 5): the array counterpart of `pipeline.image_dataset`."""

import numpy as np
import tensorflow as tf


def dataset(images, labels, batch_size=64, augment=None, shuffle=True, seed=None, class_names=None):
    """Batches in-memory images for `model.fit`: cache, shuffle, batch, augment, prefetch.

    Args:
        images: uint8 [N, height, width, 3].
        labels: int class ids [N].
        augment: a layer called on each batch with `training=True`, or None.
        shuffle: reshuffle every epoch (False keeps the order, for predictions).
        class_names: names of the classes in label order (default "0", "1", ...).

    Returns:
        A `tf.data.Dataset` of (float32 images 0-255, int32 labels), carrying
        `class_names`, `class_counts` and `num_images` like `pipeline.image_dataset`.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"got {len(images)} images and {len(labels)} labels: pass the same, "
                         "non-zero number of each.")
    labels = np.asarray(labels, np.int32)
    if class_names is None:
        class_names = [str(index) for index in range(int(labels.max()) + 1)]
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    if shuffle:
        batches = batches.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    batches = batches.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                            num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        batches = batches.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    batches = batches.prefetch(tf.data.AUTOTUNE)
    batches.class_names, batches.num_images, batches.shuffled = list(class_names), len(images), shuffle
    batches.class_counts = {name: int(np.sum(labels == index)) for index, name in enumerate(class_names)}
    return batches
