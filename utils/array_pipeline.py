"""In-memory images to augmented tf.data batches, and a random blur layer (lesson 5).

`dataset` is the array counterpart of `pipeline.image_dataset`: lesson 5's
32x32 images fit in memory, so they go straight from NumPy arrays to cached,
shuffled, batched, augmented and prefetched batches. `augmentation` is the
augmentation of "Machine Learning is Fun! Part 3": left-right flips,
rotations and a random blur (`RandomBlur`, which Keras does not have).
"""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="course")
class RandomBlur(keras.layers.Layer):
    """Blurs a random share of images with a Gaussian of random width, in training only.

    Each image is blurred with probability `probability`, with a standard
    deviation drawn uniformly from 0 to `max_sigma` pixels (separable kernel
    of radius `radius`, edges mirrored). At inference it passes images through.
    """

    def __init__(self, max_sigma=1.5, probability=0.5, radius=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if max_sigma <= 0 or not 0 <= probability <= 1 or radius < 1:
            raise ValueError(f"RandomBlur: max_sigma={max_sigma} must be > 0, probability="
                             f"{probability} in [0, 1] and radius={radius} at least 1.")
        self.max_sigma, self.probability, self.radius, self.seed = max_sigma, probability, radius, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training:
            return inputs
        count = keras.ops.shape(inputs)[0]
        sigmas = keras.random.uniform((count,), 0, self.max_sigma, seed=self.generator)
        chosen = keras.random.uniform((count,), seed=self.generator) < self.probability
        return gaussian_blur(inputs, keras.ops.where(chosen, sigmas, 0.0), self.radius)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_sigma": self.max_sigma,
                "probability": self.probability, "radius": self.radius, "seed": self.seed}


def gaussian_blur(images, sigmas, radius=2):
    """Blurs each image of a batch with its own Gaussian (sigma 0: unchanged).

    Matches `scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0),
    mode="reflect", radius=radius)`.
    """
    images = keras.ops.cast(images, "float32")
    offsets = keras.ops.arange(-radius, radius + 1, dtype="float32")
    sigmas = keras.ops.maximum(keras.ops.reshape(sigmas, (-1, 1)), 1e-3)  # 1e-3: a one-pixel kernel
    weights = keras.ops.exp(-0.5 * (offsets[None, :] / sigmas) ** 2)
    weights = weights / keras.ops.sum(weights, axis=1, keepdims=True)
    height, width = keras.ops.shape(images)[1], keras.ops.shape(images)[2]
    padded = keras.ops.pad(images, [(0, 0), (radius, radius), (radius, radius), (0, 0)], mode="symmetric")
    rows = sum(weights[:, k, None, None, None] * padded[:, k:k + height, :, :]
               for k in range(2 * radius + 1))
    return sum(weights[:, k, None, None, None] * rows[:, :, k:k + width, :]
               for k in range(2 * radius + 1))


def augmentation(rotation_degrees=25, max_sigma=1.5, seed=None):
    """The original's augmentation: left-right flips, rotations up to 25 degrees, random blur.

    The original blurred half the images with a sigma of up to 3 pixels; on
    32x32 images that erases a bird, so the blur here stops at `max_sigma`.
    """
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(rotation_degrees / 360, fill_mode="reflect", seed=seed),
        RandomBlur(max_sigma, seed=seed),
    ], name="augmentation")


def dataset(images, labels, batch_size=64, augment=None, shuffle=True, seed=None, class_names=None):
    """Batches in-memory images for `model.fit`: cache, shuffle, batch, augment, prefetch.

    Args:
        images: uint8 [N, height, width, 3].
        labels: int class ids [N].
        batch_size: images per batch.
        augment: a layer called on each batch with `training=True`, or None.
        shuffle: reshuffle every epoch (False keeps the order, for predictions).
        seed: the shuffle seed.
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
        batches = batches.map(lambda x, y: (augment(x, training=True), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    batches = batches.prefetch(tf.data.AUTOTUNE)
    batches.class_names, batches.num_images, batches.shuffled = list(class_names), len(images), shuffle
    batches.class_counts = {name: int(np.sum(labels == index)) for index, name in enumerate(class_names)}
    return batches
