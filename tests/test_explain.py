"""Grad-CAM, feature maps and kernel pictures (utils.explain), against references."""

import re

import keras
import numpy as np
import pytest
import scipy.signal
from PIL import Image

from utils import evaluate, explain

SIZE = 32
BRIGHT = np.full((3, 3), 1 / 9)  # filter 0: the local mean brightness
DARK = -np.full((3, 3), 1 / 9)   # filter 1: the local darkness
BIASES = np.array([-0.5, 0.2])   # filter 0 fires only where the mean is above 0.5; filter 1 where below 0.2
DENSE = np.array([[-5.0, 5.0], [1.0, -1.0]])  # class 1 "square" = bright evidence, minus dark evidence


def square_detector(nested=False, frozen=False):
    """A network that by construction responds to a bright square: class 1 is "square"."""
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="detector")
    head = [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax", name="classes")]
    if nested:
        base = keras.Sequential([keras.Input((SIZE, SIZE, 1)), conv], name="base")
        base.trainable = not frozen
        model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), base, *head])
    else:
        model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), conv, *head])
    conv.set_weights([np.stack([BRIGHT, DARK], -1)[:, :, None, :], BIASES])
    model.get_layer("classes").set_weights([DENSE, np.zeros(2)])
    return model


def image_with_square(row, column, side=6):
    image = np.zeros((SIZE, SIZE, 1), "float32")
    image[row:row + side, column:column + side] = 1.0
    return image


def grad_cam_by_hand(image, class_index):
    """Grad-CAM for `square_detector`, computed without Keras or autodiff.

    The class score is sum_k DENSE[k, c] * mean(A_k) + bias, so its gradient
    with respect to A_k(i, j) is DENSE[k, c] / (H * W) everywhere: that is the
    channel weight. The maps A_k come from SciPy's correlation (Keras' Conv2D
    does not flip the kernel) with zero padding.
    """
    maps = [np.maximum(scipy.signal.correlate2d(image[..., 0], kernel, mode="same") + bias, 0)
            for kernel, bias in zip((BRIGHT, DARK), BIASES)]
    weights = DENSE[:, class_index] / (SIZE * SIZE)
    heat = np.maximum(sum(weight * level for weight, level in zip(weights, maps)), 0)
    return heat / heat.max()


@pytest.mark.parametrize("row, column", [(3, 4), (2, 22), (21, 5), (24, 24)])
def test_the_heat_maps_peak_falls_in_the_quadrant_of_the_square(row, column):
    heat = explain.grad_cam(square_detector(), image_with_square(row, column)[None], class_index=1)[0]
    peak_row, peak_column = np.unravel_index(heat.argmax(), heat.shape)
    assert (peak_row < SIZE // 2, peak_column < SIZE // 2) == (row < SIZE // 2, column < SIZE // 2)
    assert heat.max() == pytest.approx(1.0)


@pytest.mark.parametrize("class_index", [0, 1])
def test_grad_cam_matches_the_formula_computed_independently(class_index):
    images = np.stack([image_with_square(3, 4), image_with_square(20, 17, side=9)])
    heat = explain.grad_cam(square_detector(), images, class_index=class_index)
    for image, got in zip(images, heat):
        np.testing.assert_allclose(got, grad_cam_by_hand(image, class_index), atol=1e-5)


def test_a_frozen_nested_base_gives_the_same_maps_as_the_flat_network():
    images = np.stack([image_with_square(3, 4), image_with_square(24, 20)])
    flat = explain.grad_cam(square_detector(), images, class_index=1)
    nested = explain.grad_cam(square_detector(nested=True, frozen=True), images, class_index=1)
    assert explain.last_conv_layer(square_detector(nested=True)) == "detector"
    np.testing.assert_allclose(nested, flat, atol=1e-6)


def test_the_predicted_class_is_explained_by_default():
    model = square_detector()
    images = np.stack([image_with_square(3, 4), image_with_square(20, 17, side=12)])
    predicted = model.predict_on_batch(images).argmax(axis=1)
    np.testing.assert_allclose(explain.grad_cam(model, images),
                               explain.grad_cam(model, images, class_index=predicted), atol=1e-7)


def test_a_network_with_a_branch_is_refused_with_a_reason():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.Add()([x, keras.layers.Conv2D(2, 3, padding="same")(x)])
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="chain of layers"):
        explain.grad_cam(keras.Model(inputs, outputs, name="residual"), np.zeros((1, 8, 8, 1)))


def small_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((24, 24, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ], name="small")


def test_feature_maps_have_the_shapes_model_summary_reports_and_keras_values():
    model = small_cnn()
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    reported = {name: tuple(int(n) for n in shape.split(","))
                for name, shape in re.findall(r"│ (\w+)(?: \(\w+\))?\s*│ \(None, ([\d, ]+)\)", "\n".join(lines))}
    names = [layer.name for layer in model.layers if len(layer.output.shape) == 4]
    assert len(reported) >= len(names) == 6
    images = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3))
    maps = explain.feature_maps(model, images, names)
    assert list(maps) == names
    # the reference: Keras' own graph of the model, cut at each layer, in inference mode
    reference = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    for (name, stack), expected in zip(maps.items(), reference.predict_on_batch(images)):
        assert stack.shape == (3, *reported[name])
        np.testing.assert_allclose(stack, expected, rtol=1e-5, atol=1e-5, err_msg=name)
    assert explain.last_conv_layer(model) == "batch_normalization"


def test_the_kernel_grid_has_one_tile_per_filter():
    model = small_cnn()
    for kernels, hand_made in ((model.layers[1].kernel, None), (model.layers[3].kernel, {"blur": BRIGHT})):
        figure = explain.show_kernels(kernels, hand_made=hand_made)
        tiles = [axis for axis in figure.axes if axis.get_images()]
        assert len(tiles) == kernels.shape[-1] + len(hand_made or {})
        assert all(axis.axison and axis.spines["left"].get_visible() for axis in tiles)  # framed, even when white
        assert not any(axis.axison for axis in figure.axes if not axis.get_images())  # no empty frames


def test_the_hand_made_kernels_names_stay_clear_of_the_learned_tiles_above():
    kernels = np.random.default_rng(0).normal(size=(3, 3, 3, 32))
    names = {"box blur": BRIGHT, "Sobel, vertical": BRIGHT.T, "Sobel, horizontal": BRIGHT}
    figure = explain.show_kernels(kernels, hand_made=names)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    tiles = [axis for axis in figure.axes if axis.get_images()]
    lowest_learned = min(axis.get_window_extent(renderer).y0 for axis in tiles[:32])
    named = [axis.title for axis in tiles[32:]]
    assert [title.get_text() for title in named] == ["box\nblur", "Sobel\nvertical", "Sobel\nhorizontal"]
    assert all(title.get_window_extent(renderer).y1 < lowest_learned for title in named)


def test_the_overlay_keeps_the_photo_visible_under_the_heat():
    photo = np.random.default_rng(1).integers(0, 256, (40, 60, 3)).astype("uint8")
    blended = explain.overlay(photo, np.full((4, 4), 0.5), alpha=0.4)
    assert blended.shape == (40, 60, 3)
    heat_colour = blended - 0.6 * photo / 255
    np.testing.assert_allclose(heat_colour, np.broadcast_to(heat_colour[0, 0], heat_colour.shape), atol=1e-5)


def test_error_panels_show_each_photo_above_its_heat_map_with_a_colour_bar(tmp_path):
    model = small_cnn()
    files = []
    for index in range(3):
        files.append(tmp_path / f"{index}.jpg")
        Image.fromarray(np.random.default_rng(index).integers(0, 256, (50, 70, 3)).astype("uint8")).save(files[-1])
    predictions = evaluate.Predictions(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([1, 1, 0]),
                                       ["cats", "dogs"], [str(path) for path in files])
    figure = evaluate.show_panel(predictions, np.array([0, 2]), "most confident", model=model)
    pictures = [axis for axis in figure.axes if axis.get_images()]
    assert len(pictures) == 4  # two photos above their two overlays
    assert [axis.get_ylabel() for axis in figure.axes if axis not in pictures] == ["share of the strongest evidence"]
    assert pictures[0].get_images()[0].get_array().shape[:2] == (50, 70)  # the photo itself, not the model's input


def test_two_models_maps_are_two_rows_under_the_same_photos():
    photos = [np.full((30, 40, 3), 100, "uint8"), np.full((20, 20, 3), 200, "uint8")]
    figure = explain.show_grad_cam(photos, {"lesson 3": np.zeros((2, 4, 4)), "VGG16": np.ones((2, 3, 3))},
                                   titles=["a", "b"])
    pictures = [axis for axis in figure.axes if axis.get_images()]
    assert len(pictures) == 6
    assert [axis.get_ylabel() for axis in pictures if axis.get_ylabel()] == ["lesson 3", "VGG16"]
    assert pictures[0].get_images()[0].get_array().shape[:2] == (30, 40)


def test_panels_show_a_phone_photo_upright_as_the_model_saw_it(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": a phone held upright
    path = tmp_path / "portrait.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3)).astype("uint8")).save(path, exif=exif)
    predictions = evaluate.Predictions(np.array([[0.3, 0.7]]), np.array([1]), ["cats", "dogs"], [str(path)])
    for model in (None, small_cnn()):
        figure = evaluate.show_panel(predictions, np.array([0]), "uncertain", model=model)
        photo = [axis for axis in figure.axes if axis.get_images()][0]
        assert photo.get_images()[0].get_array().shape[:2] == (70, 50)
