"""Checks for lesson 4's exercises (VGG16 transfer learning); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, checker, returned


@checker("4.1")
def vgg_preprocessing(function, images):
    import keras

    answered(function, "`vgg_preprocess`: a function of a batch of RGB photos, 0-255")
    images = np.asarray(images, dtype="float32")
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    got = np.asarray(returned(function(images.copy()), "vgg_preprocess"), dtype="float32")
    if got.shape != expected.shape:
        return f"it returns shape {got.shape}; it should keep the batch's shape {expected.shape}."
    if np.allclose(got, expected, atol=1e-3):
        return None
    if np.allclose(got[..., ::-1], expected, atol=1e-3):
        return "the colour channels are in the wrong order: VGG16 was trained on BGR photos."
    if np.abs(got).max() <= 1.0 + 1e-6:
        return ("the values are scaled to 0 to 1 (or -1 to 1): VGG16 expects 0-255 pixels with the ImageNet means "
                "taken away.")
    return "not what VGG16 was trained on: check the channel order and which mean goes with which channel."


@checker("4.2")
def unfreezing(function):
    import keras

    answered(function, "`unfreeze_from`: a function of (base, first_block)")
    for first in ("block4", "block5", "block3"):
        base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        base.trainable = False
        function(base, first)
        if not base.trainable:
            return ("base.trainable is still False: set it to True first, then freeze the layers before first_block, "
                    "so that the base's own count of trainable weights agrees with its layers.")
        blocks = sorted({layer.name.split("_")[0] for layer in base.layers if layer.name.startswith("block")})
        wanted = {block for block in blocks if block >= first}
        for layer in base.layers:
            should = layer.name.split("_")[0] in wanted and bool(layer.weights)
            if bool(layer.trainable and layer.weights) != should:
                return (f"after unfreeze_from(base, '{first}'), layer {layer.name} is "
                        f"{'trainable' if layer.trainable else 'frozen'}; "
                        f"it should be {'trainable' if should else 'frozen'}.")
    return None


@checker("4.3")
def feature_shape(function):
    import keras

    answered(function, "`features_shape`: a function of image_size")
    for size in (32, 64, 100, 150, 224):
        base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
        expected = tuple(base.output_shape[1:])
        got = returned(function(size), "features_shape")
        if np.ndim(got) != 1:  # a number (the count of features), or a string
            return f"it returns {got!r}; it should return a shape, a tuple such as (height, width, channels)."
        got = tuple(got)
        if got != expected:
            return f"for {size}×{size} photos yours gives {got}; VGG16's base outputs {expected}."
    return None
