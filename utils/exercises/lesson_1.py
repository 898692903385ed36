"""Checks for lesson 1's exercises (convolution filters); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, array, checker, returned


@checker("1.1")
def diagonal_kernel(kernel):
    import scipy.signal

    kernel, problem = array(kernel, "`diagonal`: a 3×3 NumPy array", (3, 3))
    if problem:
        return problem
    if abs(kernel.sum()) > 1e-9:
        return f"a flat area gives {100 * kernel.sum():g} instead of 0 (your weights add up to {kernel.sum():g})."
    respond = lambda image: np.maximum(scipy.signal.convolve2d(image, kernel, mode="valid"), 0).max()
    wanted, opposite = respond(np.fliplr(np.tri(40)) * 255), respond(np.tri(40) * 255)
    if wanted <= 1e-9:
        return ("after ReLU nothing is left on the bottom-left-to-top-right edge with the bright side at the "
                "bottom right: the response there is zero or negative (remember that `convolve` flips the kernel).")
    if opposite > 0.1 * wanted:
        return f"it also responds to the opposite diagonal, {opposite / wanted:.0%} as strongly."
    step = np.tile(np.arange(40) >= 20, (40, 1)) * 255  # a vertical edge, bright on the right; .T: horizontal
    if max(respond(step), respond(step.T)) > wanted:
        return ("it responds more strongly to a vertical or horizontal edge than to the diagonal one: a straight-edge "
                "kernel; weigh the pixels on either side of the diagonal instead.")
    return None


@checker("1.2")
def gaussian_blur(kernel, blurred, gray):
    import scipy.signal

    kernel, problem = array(kernel, "`gaussian`: a 5×5 NumPy array", (5, 5))
    if problem:
        return problem
    if abs(kernel.sum() - 1) > 1e-6:
        return f"the weights add up to {kernel.sum():g}: a blur's weights add up to 1, or the photo changes brightness."
    binomial = np.array([1, 4, 6, 4, 1])
    if not np.allclose(kernel, np.outer(binomial, binomial) / np.outer(binomial, binomial).sum()):
        return "a blur, but not the one built from [1, 4, 6, 4, 1]: compare your kernel's rows with that list."
    blurred = np.asarray(answered(blurred, "`blurred`: the photo `gray` convolved with your kernel"), dtype=float)
    reference = scipy.signal.convolve2d(gray, kernel, mode="valid")
    if blurred.shape != reference.shape:
        return f"`blurred` has shape {blurred.shape}; `convolve` on `gray` gives {reference.shape}."
    if not np.allclose(blurred, reference, atol=1e-6):
        return "`blurred` is not `gray` convolved with your kernel: blur `gray` itself, with `convolve`."
    return None


@checker("1.3")
def output_size(function):
    import keras

    answered(function, "`output_size`: a function of (size, kernel_size, stride, padding)")
    for padding in ("valid", "same"):
        for size in (5, 8, 28, 31, 32, 100):
            for kernel_size in (1, 3, 5):
                for stride in (1, 2, 3):
                    layer = keras.layers.Conv2D(1, kernel_size, strides=stride, padding=padding)
                    expected = layer.compute_output_shape((1, size, size, 1))[1]
                    got = returned(function(size, kernel_size, stride, padding), "output_size")
                    if got != expected:
                        return (f"for a {size}×{size} image, kernel {kernel_size}, stride {stride}, padding "
                                f"'{padding}', yours gives {got} and Keras gives {expected}.")
    return None
