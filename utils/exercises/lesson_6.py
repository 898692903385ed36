"""Checks for lesson 6's exercises (ship it); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, checker, returned


@checker("6.1")
def agreement(function, first, second):
    answered(function, "`agreement`: a function of two arrays of class probabilities")
    rng = np.random.default_rng(0)
    random_pair = rng.dirichlet([1, 1], 50), rng.dirichlet([1, 1], 50)
    for a, b in [(first, second), random_pair, (random_pair[0], random_pair[0])]:
        expected = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
        got = float(returned(function(a, b), "agreement"))
        if not np.isclose(got, expected):
            if np.isclose(got, np.mean(np.isclose(a, b).all(axis=1))):
                return "it counts identical probabilities; two models agree when they choose the same class."
            return (f"it gives {got:.3f} for a pair of models that choose the same class on {expected:.1%} "
                    "of the photos.")
    return None


@checker("6.2")
def quantize(function, photos, scale, zero_point, dtype):
    answered(function, "`quantize`: a function of (values, scale, zero_point, dtype)")
    cases = [(np.asarray(photos, dtype="float32"), scale, zero_point, dtype),  # the lesson's model and photos
             (np.linspace(-300, 600, 181, dtype="float32"), 2.2, 3, np.uint8),  # fractions: truncating is not rounding
             (np.linspace(-20, 20, 81), 0.15, -10, np.int8)]
    for values, value_scale, value_zero, value_type in cases:
        info, steps = np.iinfo(value_type), values / value_scale
        expected = [np.clip(rounded + value_zero, info.min, info.max).astype(value_type)  # halves: to even (NumPy,
                    for rounded in (np.round(steps), np.sign(steps) * np.floor(np.abs(steps) + 0.5))]  # or as TFLite)
        got = np.asarray(returned(function(values, value_scale, value_zero, value_type), "quantize"))
        if got.dtype != np.dtype(value_type):
            return f"it returns {got.dtype} numbers; asked for {np.dtype(value_type).name}, it should return those."
        if got.shape != values.shape:
            return f"it returns shape {got.shape}; it should keep the shape {values.shape}."
        if not any(np.array_equal(got, rounded) for rounded in expected):
            wrong, expected = int(np.sum(got != expected[0])), expected[0]
            return (f"with scale {value_scale} and zero point {value_zero}, {wrong:,} of {expected.size:,} values "
                    "differ (rounding, the zero point, or values beyond the type's range?).")
    return None


@checker("6.3")
def dequantize(function, photos, scale, zero_point, dtype):
    answered(function, "`dequantize`: a function of (quantized, scale, zero_point)")
    info = np.iinfo(dtype)
    photos = np.clip(np.round(np.asarray(photos, dtype="float32") / scale) + zero_point, info.min, info.max)
    photos = photos.astype(dtype)
    cases = [(photos, scale, zero_point), (np.arange(-128, 128, dtype="int8").reshape(-1, 2), 0.02, -5)]
    for values, value_scale, value_zero in cases:
        expected = (values.astype("float32") - value_zero) * value_scale
        got = np.asarray(returned(function(values, value_scale, value_zero), "dequantize"), dtype="float32")
        if got.shape != expected.shape:
            return f"it returns shape {got.shape}; it should keep the shape {expected.shape}."
        if not np.allclose(got, expected, atol=1e-6):
            if np.allclose(got, values.astype("float32") * value_scale - value_zero, atol=1e-6):
                return "the zero point is taken away after scaling: take it away from the integers first."
            if np.allclose(got, (values - value_zero) * value_scale, atol=1e-6):
                return "the integers overflow: turn them into floats before taking the zero point away."
            return "these are not the numbers the integers stand for: use the scale and the zero point."
    return None
