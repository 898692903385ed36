"""utils.digits and lesson 2: loading, the lesson's own canvas placement, and the metrics the lesson writes."""

import json

import nbformat
import numpy as np
import PIL.Image
import pytest
import sklearn.datasets

from utils import digits, lessons, paths

LESSON = paths.NOTEBOOKS / "02_fc_vs_cnn.ipynb"


def canvas_functions():
    """The lesson's own placing functions: its cell that defines `place_on_canvas`, run alone with NumPy."""
    cells = [cell.source for cell in nbformat.read(LESSON, as_version=4).cells
             if cell.cell_type == "code" and "def place_on_canvas(" in cell.source]
    assert len(cells) == 1, f"{LESSON.name} should define place_on_canvas in one cell, found {len(cells)}"
    namespace = {"np": np}
    exec(cells[0], namespace)
    return namespace


def test_a_known_digit_lands_exactly_at_a_known_offset():
    place_on_canvas = canvas_functions()["place_on_canvas"]
    digit = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
    canvas = place_on_canvas(digit[np.newaxis], 9, [(2, 5)])
    assert canvas.shape == (1, 9, 9) and canvas.dtype == np.uint8
    np.testing.assert_array_equal(canvas[0, 2:5, 5:8], digit)
    assert canvas.sum() == digit.sum()  # nothing anywhere else


def test_each_digit_goes_to_its_own_offset():
    place_on_canvas = canvas_functions()["place_on_canvas"]
    batch = np.stack([np.full((8, 8), value, dtype=np.uint8) for value in (10, 20, 30)])
    offsets = np.array([[0, 0], [16, 16], [3, 11]])
    canvases = place_on_canvas(batch, 24, offsets)
    assert canvases.shape == (3, 24, 24)
    for canvas, value, (row, column) in zip(canvases, (10, 20, 30), offsets):
        assert canvas[row:row + 8, column:column + 8].min() == value
        assert np.count_nonzero(canvas) == 64


def test_centered_digits_sit_in_the_middle_of_a_canvas_three_times_their_side():
    functions = canvas_functions()
    real = sklearn.datasets.load_digits().images[:2].astype(np.uint8)
    canvases = functions["place_on_canvas"](real, 24, functions["centered_offsets"](2, 8, 24))
    np.testing.assert_array_equal(canvases[:, 8:16, 8:16], real)
    assert canvases.sum() == real.sum()
    np.testing.assert_array_equal(functions["centered_offsets"](3, 28, 84), [[28, 28]] * 3)


def test_random_positions_are_uniform_over_every_place_the_digit_fits():
    functions = canvas_functions()
    offsets = functions["random_offsets"](20_000, 8, 24, np.random.default_rng(0))
    assert offsets.shape == (20_000, 2) and offsets.min() == 0 and offsets.max() == 16
    counts = np.bincount(offsets[:, 0], minlength=17)
    assert counts.min() > 0.8 * 20_000 / 17 and counts.max() < 1.2 * 20_000 / 17
    batch = np.ones((50, 8, 8), dtype=np.uint8)
    canvases = functions["place_on_canvas"](batch, 24, functions["random_offsets"](50, 8, 24, np.random.default_rng(1)))
    assert (canvases.sum(axis=(1, 2)) == 64).all()  # every digit wholly on its canvas
    rows = [np.flatnonzero(canvas.any(axis=1))[0] for canvas in canvases]
    assert len(set(rows)) > 5


def test_a_digit_that_would_not_fit_is_refused():
    place_on_canvas = canvas_functions()["place_on_canvas"]
    for offset in [(17, 0), (0, 17), (-1, 0)]:
        with pytest.raises(AssertionError, match="must fit on the canvas"):
            place_on_canvas(np.zeros((1, 8, 8)), 24, [offset])
    with pytest.raises(AssertionError, match="must fit on the canvas"):
        place_on_canvas(np.zeros((1, 8, 8)), 6, [(0, 0)])


def test_load_falls_back_to_sklearn_digits_when_there_is_no_mnist(tmp_path):
    loaded = digits.load(tmp_path / "mnist")
    assert loaded.name == "sklearn_digits" and loaded.side == 8
    assert "python -m utils.data download mnist" in loaded.description
    assert len(loaded.x_train) + len(loaded.x_test) == 1797
    assert loaded.x_train.dtype == np.uint8 and loaded.x_train.max() == 255
    reference = sklearn.datasets.load_digits()
    first = loaded.x_train[0]
    matches = np.all(np.round(reference.images * 255 / 16) == first, axis=(1, 2))
    assert matches.any()  # the training digits are scikit-learn's, rescaled to 0–255
    assert set(np.bincount(loaded.y_test)) <= {43, 44, 45, 46}  # a stratified quarter


def test_load_reads_keras_mnist_npz_when_present_and_subsamples(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
              "y_train": np.arange(50) % 10,
              "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "y_test": np.arange(20) % 10}
    np.savez(tmp_path / "mnist.npz", **arrays)
    loaded = digits.load(tmp_path)
    assert loaded.name == "mnist" and loaded.side == 28 and "MNIST" in loaded.description
    np.testing.assert_array_equal(loaded.x_train, arrays["x_train"])
    np.testing.assert_array_equal(loaded.y_test, arrays["y_test"])
    small = digits.load(tmp_path, max_train=10, max_test=5, seed=1)
    assert small.x_train.shape == (10, 28, 28) and small.x_test.shape == (5, 28, 28)
    index = np.flatnonzero(np.all(arrays["x_train"] == small.x_train[0], axis=(1, 2)))[0]
    assert small.y_train[0] == arrays["y_train"][index]  # images keep their labels


def test_load_rejects_a_file_that_is_not_mnist(tmp_path):
    np.savez(tmp_path / "mnist.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="is not Keras' mnist.npz \\('x_train is not a file in the archive'\\)"):
        digits.load(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="is not Keras' mnist.npz .*utils.data download mnist"):
        digits.load(tmp_path)
    with pytest.raises(ValueError, match="positive whole numbers"):
        digits.load(tmp_path / "elsewhere", max_train=0)


def fake_mnist(folder, train=300, test=100):
    """A tiny mnist.npz: scikit-learn's real digits, enlarged to 28×28 as MNIST's are."""
    bunch = sklearn.datasets.load_digits()
    images = np.stack([
        np.asarray(PIL.Image.fromarray(np.uint8(image * 255 / 16)).resize((20, 20)))
        for image in bunch.images[:train + test]])
    images = np.pad(images, ((0, 0), (4, 4), (4, 4)))  # MNIST: 20×20 digit in a 28×28 frame
    labels = bunch.target[:train + test].astype(np.uint8)
    np.savez(folder / "mnist.npz", x_train=images[:train], y_train=labels[:train],
             x_test=images[train:], y_test=labels[train:])


@pytest.fixture(scope="module")
def lesson_metrics(tmp_path_factory):
    """Runs lesson 2 once in smoke mode on a fake MNIST, and returns its metrics.json.

    The generic smoke test (test_notebooks.py) covers the offline-digits path;
    this run covers the MNIST path (28×28 digits on an 84×84 canvas).
    """
    folder = tmp_path_factory.mktemp("lesson2")
    fake_mnist(folder)
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits it: the run's folder goes there
        patch.setenv("COURSE_MODELS_DIR", str(folder / "models"))
        result = lessons.run(LESSON, {"DATA_DIR": str(folder)}, out_dir=folder / "out", smoke=True, html=False,
                             progress=False)
    assert result.status == "ok", result.error
    [written] = (folder / "models" / "02_fc_vs_cnn" / "runs").glob("*-sample/metrics.json")  # a run folder of its own
    return json.loads(written.read_text())


@pytest.mark.notebook
def test_lesson_writes_metrics_with_every_key_in_range(lesson_metrics):
    assert lesson_metrics["dataset"] == "mnist"
    assert lesson_metrics["canvas_size"] == 84 and lesson_metrics["digit_size"] == 28
    for key in ("fc_centered", "fc_shifted", "fc_augmented_centered", "fc_augmented_shifted",
                "cnn_centered", "cnn_shifted", "eight_precision", "eight_recall",
                "sliding_window_accuracy"):
        assert 0 <= lesson_metrics[key] <= 1, key
    for key in ("fc_params", "cnn_params", "fc_augmented_params"):
        assert isinstance(lesson_metrics[key], int) and lesson_metrics[key] > 0, key
    # an FC net on an 84×84 canvas has a weight per pixel per unit; the CNN does not grow
    assert lesson_metrics["fc_params"] > 84 * 84 * 10 > lesson_metrics["cnn_params"]
    assert lesson_metrics["big_dense_params"] == 256 * 256 * 3 * 1000 + 1000
