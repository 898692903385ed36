"""utils.filters against SciPy and hand-checked arrays."""

import numpy as np
import pytest
import scipy.signal

from utils import filters


@pytest.mark.parametrize("image_shape, kernel_shape", [((20, 17), (3, 3)), ((9, 9), (8, 8)),
                                                       ((12, 30), (2, 5)), ((5, 5), (5, 5))])
def test_convolve2d_matches_scipy_on_random_input(image_shape, kernel_shape):
    rng = np.random.default_rng(42)
    image, kernel = rng.normal(size=image_shape), rng.normal(size=kernel_shape)
    expected = scipy.signal.convolve2d(image, kernel, mode="valid")
    np.testing.assert_allclose(filters.convolve2d(image, kernel), expected, atol=1e-10)


def test_convolve2d_flips_the_kernel_unlike_correlation():
    rng = np.random.default_rng(1)
    image, kernel = rng.normal(size=(10, 10)), rng.normal(size=(3, 3))
    correlated = scipy.signal.correlate2d(image, kernel, mode="valid")
    np.testing.assert_allclose(filters.convolve2d(image, kernel[::-1, ::-1]), correlated, atol=1e-10)
    assert not np.allclose(filters.convolve2d(image, kernel), correlated)


def test_convolve2d_rejects_colour_images_and_oversized_kernels():
    with pytest.raises(ValueError, match="grayscale"):
        filters.convolve2d(np.zeros((8, 8, 3)), filters.BOX_BLUR_3)
    with pytest.raises(ValueError, match="larger than image"):
        filters.convolve2d(np.zeros((2, 2)), filters.BOX_BLUR_3)


def test_box_blur_averages_and_keeps_a_flat_image_flat():
    kernel = filters.box_blur(8)
    assert kernel.shape == (8, 8) and kernel.sum() == pytest.approx(1)
    np.testing.assert_allclose(filters.convolve2d(np.full((20, 20), 7.0), kernel), 7.0)


def test_max_pool_of_a_known_4x4_array():
    feature_map = np.array([[1, 3, 2, 0],
                            [4, 2, 1, 1],
                            [0, 5, 7, 6],
                            [1, 1, 8, 2]])
    np.testing.assert_array_equal(filters.max_pool2d(feature_map), [[4, 2], [5, 8]])


def test_max_pool_halves_a_10x10_map_and_drops_leftovers():
    assert filters.max_pool2d(np.zeros((10, 10))).shape == (5, 5)
    assert filters.max_pool2d(np.zeros((11, 7))).shape == (5, 3)


def test_relu_zeroes_negatives_only():
    np.testing.assert_array_equal(filters.relu(np.array([-2.0, -0.5, 0.0, 3.0])), [0, 0, 0, 3])


def test_sobel_magnitude_is_largest_along_a_vertical_edge():
    image = np.zeros((40, 40))
    image[:, 23:] = 255  # dark left half, bright right half: the edge is between columns 22 and 23
    magnitude = filters.gradient_magnitude(image)
    assert magnitude.dtype == np.uint8 and magnitude.max() == 255
    # valid-mode output is shifted by one pixel: output column c is centred on image column c + 1
    strongest_columns = set(np.argmax(magnitude, axis=1) + 1)
    assert strongest_columns <= {22, 23}
    assert magnitude[:, :18].max() == 0 and magnitude[:, 25:].max() == 0


def test_sobel_magnitude_of_a_flat_image_is_zero():
    assert filters.gradient_magnitude(np.full((10, 10), 80.0)).max() == 0
