"""Random flips, rotations, zooms, shears, shifts and contrast as one pass per image (lesson 3).

The stock Keras augmentation layers each resample every image: a rotation,
then a zoom, then a shear is three warps. `RandomAffine` multiplies the
transforms into one affine matrix per image and resamples once (bilinear),
then changes the contrast, all in one XLA-compiled pass when it runs inside
`pipeline.image_dataset`. Lessons build it with `pipeline.augmentation`.
"""

import contextlib
import math
import threading

import keras
import tensorflow as tf

FILL_MODES = ("reflect", "nearest")


# Set inside `compiled`: RandomAffine then runs XLA-compiled, on batches padded
# to this size (XLA compiles once per shape), and notes what it will compile.
_COMPILING = threading.local()


@contextlib.contextmanager
def compiled(batch_size):
    """Within it, `RandomAffine` layers traced into a tf.data graph run XLA-compiled (`pipeline.image_dataset`).

    Every batch is padded to `batch_size` images, so that XLA compiles once.
    On leaving, the compiling starts in a background thread, while the
    first epoch is still decoding images.
    """
    _COMPILING.batch_size, _COMPILING.compiles = batch_size, []
    try:
        yield
        if _COMPILING.compiles:
            _compile_in_background(_COMPILING.compiles)
    finally:
        _COMPILING.batch_size, _COMPILING.compiles = None, []


def _augment(images, transforms, contrast_factors, fill_mode):
    """One warp per image, then its contrast change (when `contrast_factors` is not None)."""
    images = affine_warp(images, transforms, fill_mode)
    if contrast_factors is not None:
        images = adjust_contrast(images, contrast_factors)
    return images


# XLA fuses the warp and the contrast change into one pass; autograph has
# nothing to convert here (no Python control flow on tensors) and is slow to try.
_xla_augment = tf.function(_augment, jit_compile=True, autograph=False)


def _compile_in_background(compiles):
    """Compiles the XLA augmentation while the first epoch decodes the images.

    Calls with placeholder batches of the very shapes the tf.data graph
    traced, so they share its compiled code (XLA caches it per function and
    shape); the first augmented batch then need not wait for the compiler.
    """
    def compile_all():
        for specs, fill_mode in compiles:
            try:
                _xla_augment(*(None if spec is None else tf.zeros(spec.shape, spec.dtype) for spec in specs),
                             fill_mode)
            except Exception:  # only a head start: the dataset's own first call compiles and reports errors
                return

    threading.Thread(target=compile_all, name="compile-augmentation", daemon=True).start()


def adjust_contrast(images, factors):
    """Scales each image's pixels away from (or towards) its mean colour, like `keras.layers.RandomContrast`.

    Args:
        images: float images (batch, height, width, channels), pixel values 0-255.
        factors: one factor per image, shape (batch,): 1 keeps the image,
            below 1 flattens it, above 1 strengthens it.

    Returns:
        The images, clipped to 0-255.
    """
    mean = keras.ops.mean(images, axis=(1, 2), keepdims=True)
    return keras.ops.clip((images - mean) * factors[:, None, None, None] + mean, 0, 255)


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
    """Random flip, rotation, zoom, shear and shift as one affine warp per image, then contrast.

    Args:
        flip_probability: chance of mirroring an image left to right.
        rotation: largest rotation, as a fraction of a full turn (0.1 is 36
            degrees either way), like `keras.layers.RandomRotation`.
        zoom: largest zoom in or out, as a fraction (0.2 samples a scale
            between 0.8 and 1.2, separately for width and height).
        shear: largest horizontal shear factor (x moves by up to shear * y).
        translation: largest shift, as a fraction of the width and height.
        contrast: largest contrast change, as a fraction (0.2: factor 0.8-1.2,
            as `keras.layers.RandomContrast`), for pixels 0-255; 0 for none.
        fill_mode: how to fill pixels from outside the image; one of
            "reflect" (mirror the image at its edges) or "nearest" (repeat
            the edge pixels).
        seed: random seed, for repeatable augmentation.

    Takes a batch (batch, height, width, channels) or one image, of 0-255
    pixels in any numeric dtype (uint8 is fastest: it warps the pixels as
    stored), and returns it unchanged in shape, in the layer's float dtype,
    like Keras's own augmentation layers. At inference (`training=False`) it
    leaves the pixels as they are (only the dtype changes).
    """

    def __init__(self, flip_probability=0.0, rotation=0.0, zoom=0.0, shear=0.0, translation=0.0, contrast=0.0,
                 fill_mode="reflect", seed=None, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"RandomAffine: fill_mode={fill_mode!r}; use one of {FILL_MODES}")
        ranges = dict(rotation=rotation, zoom=zoom, shear=shear, translation=translation, contrast=contrast)
        for name, value in ranges.items():
            if not 0 <= value < 1:
                raise ValueError(f"RandomAffine: {name}={value} is out of range; use a fraction in [0, 1)")
        if not 0 <= flip_probability <= 1:
            raise ValueError(f"RandomAffine: flip_probability={flip_probability} must be between 0 and 1")
        self.flip_probability, self.rotation, self.zoom = float(flip_probability), rotation, zoom
        self.shear, self.translation, self.contrast = shear, translation, contrast
        self.fill_mode, self.seed = fill_mode, seed
        self.generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch_size, height, width):
        """Samples one output-to-input transform per image, as rows of 8 numbers.

        `keras.ops.image.affine_transform` maps each output pixel (x, y) to
        the input point it samples, so these are the inverse warps.
        """
        return self._sample(batch_size, height, width)[0]

    def _sample(self, batch_size, height, width):
        """Draws each image's transform and contrast factor, from one random draw per batch."""
        # One draw for all eight choices keeps the tf.data graph small, and so
        # quick to set up at the start of every epoch.
        draws = keras.random.uniform((8, batch_size), -1.0, 1.0, seed=self.generator)
        flip = keras.ops.where((draws[0] + 1) / 2 < self.flip_probability, -1.0, 1.0)
        angle = draws[1] * self.rotation * 2 * math.pi
        zoom_x, zoom_y = 1 + draws[2] * self.zoom, 1 + draws[3] * self.zoom
        shear = draws[4] * self.shear
        contrast = 1 + draws[7] * self.contrast
        cos, sin = keras.ops.cos(angle), keras.ops.sin(angle)
        height, width = keras.ops.cast(height, "float32"), keras.ops.cast(width, "float32")
        # Linear part: rotation @ shear @ zoom @ flip, about the image centre.
        a00, a01 = cos * zoom_x * flip, (cos * shear - sin) * zoom_y
        a10, a11 = sin * zoom_x * flip, (sin * shear + cos) * zoom_y
        centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
        shift_x, shift_y = draws[5] * self.translation * width, draws[6] * self.translation * height
        b0 = centre_x + shift_x - a00 * centre_x - a01 * centre_y
        b1 = centre_y + shift_y - a10 * centre_x - a11 * centre_y
        zeros = keras.ops.zeros_like(a00)
        return keras.ops.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1), contrast

    def call(self, inputs, training=True):
        if not training:
            return keras.ops.cast(inputs, self.compute_dtype)
        images = inputs if len(inputs.shape) == 4 else keras.ops.expand_dims(inputs, 0)
        shape = keras.ops.shape(images)
        transforms, factors = self._sample(shape[0], shape[1], shape[2])
        factors = factors if self.contrast else None
        batch_size = getattr(_COMPILING, "batch_size", None)
        if batch_size and keras.backend.backend() == "tensorflow":  # inside `compiled`
            outputs = self._compiled(images, transforms, factors, batch_size)
        else:
            outputs = _augment(images, transforms, factors, self.fill_mode)
        outputs = keras.ops.cast(outputs, self.compute_dtype)
        return outputs if len(inputs.shape) == 4 else outputs[0]

    def _compiled(self, images, transforms, factors, batch_size):
        """Runs `_xla_augment` on the batch padded to `batch_size` images (one shape, one compile)."""
        count = tf.shape(images)[0]

        def padded(tensor):
            if tensor is None:
                return None
            tensor = tf.pad(tensor, [[0, batch_size - count]] + [[0, 0]] * (len(tensor.shape) - 1))
            return tf.ensure_shape(tensor, [batch_size] + tensor.shape[1:])

        arguments = [padded(tensor) for tensor in (images, transforms, factors)]
        _COMPILING.compiles.append(([None if a is None else tf.TensorSpec(a.shape, a.dtype) for a in arguments],
                                   self.fill_mode))
        return _xla_augment(*arguments, self.fill_mode)[:count]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "flip_probability": self.flip_probability, "rotation": self.rotation,
                "zoom": self.zoom, "shear": self.shear, "translation": self.translation, "contrast": self.contrast,
                "fill_mode": self.fill_mode, "seed": self.seed}
