"""Handwritten digits for lesson 2, and placing them on a larger canvas.

`load` reads MNIST from Keras' `mnist.npz` when it has been downloaded
(`python -m utils.data download mnist` stores it in `data/mnist/`), and
otherwise falls back to the 1,797 real handwritten digits that scikit-learn
ships (8×8 pixels), so the lesson runs without internet. Either way the digits
come back as uint8 arrays with values 0–255, ink bright on a black background.

`place_on_canvas` pastes each digit onto an empty canvas, centered or at a
chosen or random position: lesson 2's shifted-digit experiment.
"""

import dataclasses

import numpy as np
import sklearn.datasets
import sklearn.model_selection

from utils import paths

MNIST_FILE = "mnist.npz"
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
DOWNLOAD_COMMAND = "python -m utils.data download mnist"
SKLEARN_TEST_FRACTION = 0.25


@dataclasses.dataclass
class Digits:
    """A train/test split of square grayscale digit images (lesson 2).

    Attributes:
        name: "mnist" or "sklearn_digits".
        description: one sentence saying where the digits came from.
        x_train: uint8 array (count, side, side), values 0–255.
        y_train: int array of labels 0–9.
        x_test: uint8 array (count, side, side).
        y_test: int array of labels 0–9.
    """

    name: str
    description: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def side(self):
        """The digits' width and height in pixels (28 for MNIST, 8 offline)."""
        return self.x_train.shape[1]


def load(data_dir="data/mnist", max_train=None, max_test=None, seed=0):
    """Loads MNIST if `data_dir` holds `mnist.npz`, else scikit-learn's digits.

    Args:
        data_dir: the folder where `python -m utils.data download mnist` puts
            `mnist.npz`; relative paths are taken from the kit's root folder.
        max_train: keep at most this many training digits (a random subset),
            or None for all of them.
        max_test: the same for the test digits.
        seed: seed for the scikit-learn split and the subsets.

    Returns:
        A `Digits`.

    Raises:
        ValueError: `mnist.npz` exists but is not Keras' MNIST file, or a
            limit is not a positive number.
    """
    for limit in (max_train, max_test):
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_train and max_test must be positive whole numbers or None, "
                             f"got {limit!r}")
    path = paths.resolve(data_dir) / MNIST_FILE
    if path.is_file():
        digits = _read_mnist(path)
    else:
        digits = _sklearn_digits(seed, missing=path)
    rng = np.random.default_rng(seed)
    digits.x_train, digits.y_train = _subset(digits.x_train, digits.y_train, max_train, rng)
    digits.x_test, digits.y_test = _subset(digits.x_test, digits.y_test, max_test, rng)
    return digits


def _read_mnist(path):
    """Reads Keras' `mnist.npz` (keys x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in MNIST_KEYS if key in archive.files}
    except (OSError, EOFError, ValueError) as error:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable .npz file ({error}). "
                         f"Move it away and run `{DOWNLOAD_COMMAND}`.") from error
    missing = [key for key in MNIST_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)}: it is not Keras' "
                         f"mnist.npz. Move it away and run `{DOWNLOAD_COMMAND}`.")
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1] != images.shape[2] or len(images) != len(labels):
            raise ValueError(f"{path}: x_{split} has shape {images.shape} and y_{split} "
                             f"{labels.shape}; expected (count, 28, 28) images and one label "
                             f"each. Run `{DOWNLOAD_COMMAND}` to fetch a fresh copy.")
    return Digits(
        name="mnist",
        description=f"MNIST from {path}: {len(arrays['x_train']):,} training and "
                    f"{len(arrays['x_test']):,} test digits, "
                    f"{arrays['x_train'].shape[1]}×{arrays['x_train'].shape[1]} pixels.",
        x_train=arrays["x_train"].astype(np.uint8), y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.uint8), y_test=arrays["y_test"].astype(np.int64))


def _sklearn_digits(seed, missing):
    """scikit-learn's 1,797 digits (8×8, values 0–16), rescaled to 0–255 and split."""
    bunch = sklearn.datasets.load_digits()
    images = np.round(bunch.images * 255 / 16).astype(np.uint8)
    x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
        images, bunch.target.astype(np.int64), test_size=SKLEARN_TEST_FRACTION,
        random_state=seed, stratify=bunch.target)
    return Digits(
        name="sklearn_digits",
        description=f"No MNIST in {missing.parent} ({missing.name} not found), so this uses the "
                    f"{len(images):,} handwritten digits that scikit-learn ships (8×8 pixels): "
                    f"{len(x_train):,} for training, {len(x_test):,} for testing. "
                    f"Run `{DOWNLOAD_COMMAND}` for MNIST (60,000 digits, 28×28).",
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _subset(images, labels, limit, rng):
    """A random subset of at most `limit` examples, kept in their original order."""
    if limit is None or limit >= len(images):
        return images, labels
    keep = np.sort(rng.choice(len(images), size=limit, replace=False))
    return images[keep], labels[keep]


def centered_offset(digit_size, canvas_size):
    """The (row, column) of a digit's top-left corner when it sits in the middle."""
    return (canvas_size - digit_size) // 2, (canvas_size - digit_size) // 2


def random_offsets(count, digit_size, canvas_size, rng):
    """Uniformly random top-left corners at which a digit fits wholly on the canvas.

    Args:
        count: how many offsets.
        digit_size: the digit's side in pixels.
        canvas_size: the canvas's side in pixels.
        rng: a `numpy.random.Generator`.

    Returns:
        An int array (count, 2) of (row, column), each from 0 to
        canvas_size - digit_size inclusive.
    """
    _check_sizes(digit_size, canvas_size)
    return rng.integers(0, canvas_size - digit_size + 1, size=(count, 2))


def place_on_canvas(digits, canvas_size, offsets=None, rng=None):
    """Pastes each digit onto an empty (black) square canvas (lesson 2).

    Args:
        digits: array (count, side, side), or one digit (side, side).
        canvas_size: the canvas's side in pixels, at least the digit's side.
        offsets: where each digit's top-left corner goes: one (row, column)
            pair for all digits, or an array (count, 2). None: centered, or
            random positions if `rng` is given.
        rng: a `numpy.random.Generator` for uniformly random positions (used
            only when `offsets` is None).

    Returns:
        An array (count, canvas_size, canvas_size) of the digits' dtype, or
        (canvas_size, canvas_size) for one digit.

    Raises:
        ValueError: the digits are not square images, the canvas is smaller
            than a digit, or an offset would put part of a digit off the canvas.
    """
    digits = np.asarray(digits)
    single = digits.ndim == 2
    if single:
        digits = digits[np.newaxis]
    if digits.ndim != 3 or digits.shape[1] != digits.shape[2]:
        raise ValueError(f"place_on_canvas expects square digits shaped (count, side, side) or "
                         f"(side, side), got shape {digits.shape}")
    count, side = len(digits), digits.shape[1]
    _check_sizes(side, canvas_size)
    if offsets is None:
        offsets = (random_offsets(count, side, canvas_size, rng) if rng is not None
                   else centered_offset(side, canvas_size))
    offsets = np.broadcast_to(np.asarray(offsets, dtype=np.int64), (count, 2))
    if offsets.min() < 0 or offsets.max() > canvas_size - side:
        raise ValueError(f"offsets must be between 0 and {canvas_size - side} so that a "
                         f"{side}×{side} digit fits on a {canvas_size}×{canvas_size} canvas; "
                         f"got values from {offsets.min()} to {offsets.max()}")
    canvases = np.zeros((count, canvas_size, canvas_size), dtype=digits.dtype)
    for canvas, digit, (row, column) in zip(canvases, digits, offsets):
        canvas[row:row + side, column:column + side] = digit
    return canvases[0] if single else canvases


def _check_sizes(digit_size, canvas_size):
    if canvas_size < digit_size:
        raise ValueError(f"the canvas ({canvas_size} pixels) must be at least as large as a "
                         f"digit ({digit_size} pixels)")
