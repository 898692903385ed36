"""Handwritten digits for lesson 2: MNIST if it was downloaded, else the 8×8 digits scikit-learn ships.

Lesson 2 places them on its canvases itself (`place_on_canvas` in the notebook).
"""

import dataclasses

import numpy as np
import sklearn.datasets
import sklearn.model_selection

from utils import paths

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
DOWNLOAD_COMMAND = "python -m utils.data download mnist"


@dataclasses.dataclass
class Digits:
    """A train/test split of square grayscale digits: uint8 images (count, side, side), values 0–255, labels 0–9."""

    name: str  # "mnist" or "sklearn_digits"
    description: str  # one sentence saying where the digits came from
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def side(self):
        """The digits' width and height in pixels (28 for MNIST, 8 offline)."""
        return self.x_train.shape[1]


def load(data_dir="data/mnist", max_train=None, max_test=None, seed=0):
    """Loads a `Digits`: MNIST if `data_dir` holds `mnist.npz`, else the 1,797 digits (8×8) scikit-learn ships.

    Args:
        data_dir: where `python -m utils.data download mnist` puts `mnist.npz` (relative to the kit's root).
        max_train: keep at most this many training digits (a random subset), or None for all of them.
        max_test: the same for the test digits.
        seed: seed for the scikit-learn split and the subsets.
    """
    for limit in (max_train, max_test):
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_train and max_test must be positive whole numbers or None, got {limit!r}")
    path = paths.resolve(data_dir) / "mnist.npz"
    digits = _read_mnist(path) if path.is_file() else _sklearn_digits(seed, missing=path)
    rng = np.random.default_rng(seed)
    digits.x_train, digits.y_train = _subset(digits.x_train, digits.y_train, max_train, rng)
    digits.x_test, digits.y_test = _subset(digits.x_test, digits.y_test, max_test, rng)
    return digits


def _read_mnist(path):
    """Reads Keras' `mnist.npz` (keys x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in MNIST_KEYS}
    except (OSError, EOFError, ValueError, KeyError) as error:  # a truncated or foreign file, or another .npz
        raise ValueError(f"{path} is not Keras' mnist.npz ({error}). Move it away and run "
                         f"`{DOWNLOAD_COMMAND}`.") from error
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1] != images.shape[2] or len(images) != len(labels):
            raise ValueError(f"{path}: x_{split} has shape {images.shape} and y_{split} {labels.shape}; expected "
                             f"(count, 28, 28) images and one label each. Run `{DOWNLOAD_COMMAND}` to fetch a "
                             "fresh copy.")
    side = arrays["x_train"].shape[1]
    return Digits(
        name="mnist",
        description=f"MNIST from {path}: {len(arrays['x_train']):,} training and {len(arrays['x_test']):,} test "
                    f"digits, {side}×{side} pixels.",
        x_train=arrays["x_train"].astype(np.uint8), y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.uint8), y_test=arrays["y_test"].astype(np.int64))


def _sklearn_digits(seed, missing):
    """scikit-learn's 1,797 digits (8×8, values 0–16), rescaled to 0–255 and split."""
    bunch = sklearn.datasets.load_digits()
    images = np.round(bunch.images * 255 / 16).astype(np.uint8)
    x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
        images, bunch.target.astype(np.int64), test_size=0.25, random_state=seed, stratify=bunch.target)
    return Digits(
        name="sklearn_digits",
        description=f"No MNIST in {missing.parent} ({missing.name} not found), so this uses the {len(images):,} "
                    f"handwritten digits that scikit-learn ships (8×8 pixels): {len(x_train):,} for training, "
                    f"{len(x_test):,} for testing. Run `{DOWNLOAD_COMMAND}` for MNIST (60,000 digits, 28×28).",
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _subset(images, labels, limit, rng):
    """A random subset of at most `limit` examples, kept in their original order."""
    if limit is None or limit >= len(images):
        return images, labels
    keep = np.sort(rng.choice(len(images), size=limit, replace=False))
    return images[keep], labels[keep]

