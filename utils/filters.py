"""Convolution, ReLU and max pooling in NumPy, the way lesson 1 builds them.

Lesson 1 (`01_convolution_filters`) writes a convolution by hand, one output
pixel at a time, to show what it does; this module is the same idea in
vectorized form, for the lessons that follow. Keras layers do all of this for
real networks; these functions exist to look inside.
"""

import numpy as np

BOX_BLUR_3 = np.full((3, 3), 1 / 9)
SOBEL_VERTICAL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
SOBEL_HORIZONTAL = SOBEL_VERTICAL.T.copy()


def box_blur(size):
    """Returns a `size`×`size` averaging kernel (its weights sum to 1)."""
    if size < 1:
        raise ValueError(f"a blur kernel needs a size of at least 1, got {size}")
    return np.full((size, size), 1 / size**2)


def convolve2d(image, kernel):
    """Convolves a 2-D image with a 2-D kernel ("valid" mode, kernel flipped).

    Equal to `scipy.signal.convolve2d(image, kernel, mode="valid")`.

    Args:
        image: 2-D array (height, width).
        kernel: 2-D array, no larger than the image.

    Returns:
        Float array of shape (height - kh + 1, width - kw + 1).
    """
    image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"convolve2d takes 2-D arrays; got image {image.shape}, "
                         f"kernel {kernel.shape} (convert a colour photo to grayscale first)")
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ValueError(f"kernel {kernel.shape} is larger than image {image.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows, kernel[::-1, ::-1])


def relu(feature_map):
    """Sets negative values to 0: `max(0, x)` element-wise."""
    return np.maximum(feature_map, 0)


def max_pool2d(feature_map, size=2, stride=2):
    """Max pooling over `size`×`size` windows moved by `stride` pixels.

    A 10×10 map becomes 5×5 with the defaults; leftover rows or columns that
    do not fill a window are dropped (Keras' "valid" padding).

    Args:
        feature_map: 2-D array.
        size: window side.
        stride: step between windows.

    Returns:
        2-D array of the window maxima.
    """
    feature_map = np.asarray(feature_map)
    windows = np.lib.stride_tricks.sliding_window_view(feature_map, (size, size))
    return windows[::stride, ::stride].max(axis=(2, 3))


def gradient_magnitude(image):
    """Edge strength: `hypot(dx, dy)` of the two Sobel responses, scaled to 0–255.

    Args:
        image: 2-D grayscale array.

    Returns:
        uint8 array two pixels smaller in each direction than `image`.
    """
    dx = convolve2d(image, SOBEL_VERTICAL)
    dy = convolve2d(image, SOBEL_HORIZONTAL)
    magnitude = np.hypot(dx, dy)
    peak = magnitude.max()
    if peak > 0:
        magnitude = magnitude / peak * 255
    return magnitude.round().astype(np.uint8)
