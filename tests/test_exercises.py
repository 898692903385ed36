"""utils.exercises: every check passes a right answer and fails the stub and typical wrong answers.

The lessons' own solutions are checked where they live: each lesson's smoke run
(tests/test_notebooks.py) requires every check in it to report "correct".
"""

import ast
import builtins
import re

import keras
import nbformat
import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import skimage.data
import sklearn.utils

from utils import exercises, lessons

RNG = np.random.default_rng(0)
GRAY = skimage.data.camera()[::8, ::8].astype(float)  # a real photo, 64×64
PHOTOS = np.stack([skimage.data.chelsea()[:64, :64], skimage.data.astronaut()[:64, 100:164]]).astype("float32")
LABELS = (RNG.random(400) < 0.25).astype(int)
SCORES = np.clip(LABELS * 0.4 + RNG.random(400) * 0.6, 0, 1)
GAUSSIAN = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def mirror_model():
    """A tiny network that is not symmetric, so a photo and its mirror image get different answers."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(2, 3),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])


def output_size(size, kernel, stride, padding):
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def shift(image, rows, columns):
    return scipy.ndimage.shift(image, (rows, columns), order=0, cval=0)


def stopped_after(losses, patience):
    best, wait = np.inf, 0
    for epoch, loss in enumerate(losses, start=1):
        best, wait = (loss, 0) if loss < best else (best, wait + 1)
        if wait >= patience:
            return epoch
    return len(losses)


def unfreeze_from(base, first):
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.split("_")[0] >= first and layer.name.startswith("block")


def threshold_for_recall(labels, scores, recall):
    birds = np.sort(scores[labels == 1])[::-1]
    return birds[int(np.ceil(recall * len(birds))) - 1]


def quantize(values, scale, zero_point, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def flip(model, images):
    return (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2


PROBABILITIES = RNG.dirichlet([1, 1], 30)
OTHER = RNG.dirichlet([1, 1], 30)
CONTEXT = {
    "1.2": {"gray": GRAY}, "2.2": {"labels": LABELS, "probabilities": SCORES}, "2.3": {"images": RNG.integers(0, 17, (5, 8, 8))},
    "3.2": {"images": PHOTOS}, "3.3": {"model": mirror_model(), "images": PHOTOS},
    "4.1": {"images": PHOTOS}, "5.1": {"labels": LABELS, "scores": SCORES}, "5.2": {"labels": LABELS},
    "5.3": {"labels": LABELS}, "6.1": {"first": PROBABILITIES, "second": OTHER},
    "6.2": {"photos": PHOTOS, "scale": 1.0, "zero_point": 0, "dtype": np.uint8},
    "6.3": {"photos": PHOTOS, "scale": 1.0, "zero_point": 0, "dtype": np.uint8},
}
LESSON_3_AUGMENT = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.08, 0.08),
                    keras.layers.RandomZoom(0.2), keras.layers.RandomRotation(0.05)]
weights = sklearn.utils.class_weight.compute_class_weight("balanced", classes=np.array([0, 1]), y=LABELS)
share = LABELS.mean()

RIGHT = {
    "1.1": (np.array([[2, 1, 0], [1, 0, -1], [0, -1, -2]]),),
    "1.2": (GAUSSIAN, scipy.signal.convolve2d(GRAY, GAUSSIAN, mode="valid")),
    "1.3": (output_size,),
    "2.1": (lambda h, w, c, u: h * w * c * u + u, lambda k, c, f: k * k * c * f + f),
    "2.2": (np.mean(LABELS[SCORES > 0.3]), np.mean(SCORES[LABELS == 1] > 0.3)),
    "2.3": (shift,),
    "3.1": (stopped_after,),
    "3.2": (keras.Sequential([keras.Sequential(LESSON_3_AUGMENT[:2]), *LESSON_3_AUGMENT[2:]]),),  # `augment` nested
    "3.3": (flip,),
    "4.1": (lambda images: images[..., ::-1] - np.array([103.939, 116.779, 123.68]),),
    "4.2": (unfreeze_from,),
    "4.3": (lambda size: (size // 32, size // 32, 512),),
    "5.1": (threshold_for_recall,),
    "5.2": (np.log([1 - share, share]) + 3,),  # any shift of the two gives the same probabilities
    "5.3": ({0: weights[0], 1: weights[1]},),
    "6.1": (lambda a, b: np.mean(a.argmax(1) == b.argmax(1)),),
    "6.2": (quantize,),
    "6.3": (lambda q, scale, zero: (q.astype("float32") - zero) * scale,),
}
WRONG = {
    "1.1": [((np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),), "opposite diagonal"),  # every edge
            ((-np.array([[2, 1, 0], [1, 0, -1], [0, -1, -2]]),), "zero or negative"),  # the sign the flip undoes
            ((np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]]),), "zero or negative"),  # the other diagonal's kernel
            ((np.ones((3, 3)),), "add up to"), ((np.zeros((5, 5)),), "shape"),
            ((-SOBEL,), "vertical or horizontal edge")],  # Sobel's vertical edges also light up the staircase
    "1.2": [((GAUSSIAN * 256, None), "add up to"), ((np.full((5, 5), 1 / 25), None), "[1, 4, 6, 4, 1]"),
            ((GAUSSIAN, scipy.signal.convolve2d(GRAY, GAUSSIAN, mode="same")), "shape")],
    "1.3": [((lambda size, kernel, stride, padding: size - kernel + 1,), "stride"),
            ((lambda size, kernel, stride, padding: (size - kernel) // stride + 1,), "'same'")],
    "2.1": [((lambda h, w, c, u: h * w * c * u, lambda k, c, f: k * k * c * f + f), "biases"),
            ((lambda h, w, c, u: h * w * c * u + u, lambda k, c, f: k * k * f + f), "conv_weights")],
    "2.2": [((np.mean(SCORES[LABELS == 1] > 0.3), np.mean(LABELS[SCORES > 0.3])), "swapped"),
            ((np.mean(LABELS[SCORES > 0.5]), np.mean(SCORES[LABELS == 1] > 0.3)), "precision"),
            ((np.mean(LABELS[SCORES > 0.3]), 100 * np.mean(SCORES[LABELS == 1] > 0.3)),  # recall as a percentage
             "share (from 0 to 1) are called an 8")],
    "2.3": [((lambda image, rows, columns: np.roll(image, (rows, columns), axis=(0, 1)),), "np.roll"),
            ((lambda image, rows, columns: shift(image, -rows, -columns),), "wrong way")],
    "3.1": [((lambda losses, patience: len(losses),), "EarlyStopping"),
            ((lambda losses, patience: min(len(losses), int(np.argmin(losses)) + patience),), "EarlyStopping")],
    "3.2": [((keras.Sequential(LESSON_3_AUGMENT[1:]),), "RandomFlip is gone"),
            ((keras.Sequential([LESSON_3_AUGMENT[0], *LESSON_3_AUGMENT[2:]]),), "RandomTranslation is gone"),
            ((keras.Sequential([*LESSON_3_AUGMENT[:2], keras.layers.RandomZoom(0.5), LESSON_3_AUGMENT[3]]),), "0.2"),
            ((keras.Sequential(LESSON_3_AUGMENT[:3]),), "RandomRotation"),
            ((keras.layers.RandomZoom(0.2),), "RandomRotation"),  # the zoom alone
            ((LESSON_3_AUGMENT,), "keras.Sequential([...])"),  # the layers, as a list
            ((keras.Sequential([*LESSON_3_AUGMENT[:2], keras.layers.RandomZoom(0.2, 0.5), LESSON_3_AUGMENT[3]]),),
             "width_factor 0.5"),
            ((keras.Sequential([keras.layers.RandomFlip("vertical"), *LESSON_3_AUGMENT[1:]]),), "'vertical'"),
            ((keras.Sequential([LESSON_3_AUGMENT[0], keras.layers.RandomTranslation(0.3, 0.08),
                                *LESSON_3_AUGMENT[2:]]),), "RandomTranslation is not the lesson's")],
    "3.3": [((lambda model, images: model.predict(images, verbose=0),), "plain prediction"),
            ((lambda model, images: (model.predict(images, verbose=0) + model.predict(images[:, ::-1], verbose=0)) / 2,),
             "upside down")],
    "4.1": [((lambda images: images - np.array([103.939, 116.779, 123.68]),), "not what VGG16"),
            ((lambda images: images / 255,), "0 to 1"), ((lambda images: images / 127.5 - 1,), "-1 to 1"),
            ((lambda images: (images[..., ::-1] - np.array([103.939, 116.779, 123.68]))[..., ::-1],), "wrong order")],
    "4.2": [((lambda base, first: [setattr(layer, "trainable", layer.name >= first) for layer in base.layers],), "still False"),
            ((lambda base, first: setattr(base, "trainable", True),), "should be frozen")],
    "4.3": [((lambda size: (size // 16, size // 16, 512),), "VGG16's base outputs"),
            ((lambda size: (size // 32) ** 2 * 512,), "it returns 512; it should return a shape")],  # the count
    "5.1": [((lambda labels, scores, recall: 0.0,), "higher threshold"),
            ((lambda labels, scores, recall: 0.99,), "finds only")],
    "5.2": [((np.log([share, 1 - share]),), "wrong way round"), ((np.zeros(2),), "probability 0.500")],
    "5.3": [(({0: 1.0, 1: 1.0},), "count the same"), (({0: 1.0, 1: weights[1] / weights[0]},), "scale them"),
            (([1, 3],), "dict")],
    "6.1": [((lambda a, b: np.mean(np.isclose(a, b).all(axis=1)),), "identical probabilities"),
            ((lambda a, b: 1.0,), "same class on")],
    "6.2": [((lambda values, scale, zero, dtype: np.round(values / scale + zero).astype(dtype),), "values differ"),
            ((lambda values, scale, zero, dtype: np.round(values / scale + zero),), "returns float"),
            ((lambda values, scale, zero, dtype: quantize(np.trunc(values / scale) * scale, scale, zero, dtype),),
             "values differ"),  # truncated, not rounded
            ((lambda values, scale, zero, dtype: quantize(values, scale, zero, dtype).ravel(),), "keep the shape")],
    "6.3": [((lambda q, scale, zero: q.astype("float32") * scale - zero,), "after scaling"),
            ((lambda q, scale, zero: (q - zero) * scale,), "overflow")],
}


def messages(capsys):
    return capsys.readouterr().out.strip()


def test_every_lesson_has_at_least_three_checked_exercises_and_each_is_tested_here():
    per_lesson = {}
    for number in exercises.CHECKS:
        per_lesson.setdefault(number.split(".")[0], []).append(number)
    assert sorted(per_lesson) == ["1", "2", "3", "4", "5", "6"]
    assert all(len(numbers) >= 3 for numbers in per_lesson.values()), per_lesson
    assert set(RIGHT) == set(WRONG) == set(exercises.CHECKS)


@pytest.mark.parametrize("number", sorted(exercises.CHECKS))
def test_a_right_answer_passes(number, capsys):
    exercises.check(number, *RIGHT[number], **CONTEXT.get(number, {}))
    assert messages(capsys) == f"Exercise {number}: correct."


@pytest.mark.parametrize("number", sorted(exercises.CHECKS))
def test_the_stub_is_not_an_answer(number, capsys):
    stubs = [None] * len(RIGHT[number])
    exercises.check(number, *stubs, **CONTEXT.get(number, {}))
    assert messages(capsys).startswith(f"Exercise {number}: not answered yet: `")


@pytest.mark.parametrize("number", sorted(exercises.CHECKS))
def test_wrong_answers_fail_with_a_reason_that_does_not_give_the_answer(number, capsys):
    for answers, reason in WRONG[number]:
        exercises.check(number, *answers, **CONTEXT.get(number, {}))
        said = messages(capsys)
        assert reason in said, said
        assert "correct." not in said


@pytest.mark.parametrize("path", lessons.all_lessons(), ids=lambda path: path.stem)
def test_the_stubs_of_the_learner_copies_are_not_answers(path, capsys):
    """Each exercise cell as `make exercises` leaves it (`x = None`, or a function whose body is `...`) is refused."""
    cells = nbformat.read(path, as_version=4).cells
    for index, cell in enumerate(cells):
        if (cell.metadata.get("tags") or [None])[0] == "exercise":
            stubs = {name: None for name in defined_names(cell.source)}
            functions = [node for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)]
            exec(compile(ast.Module(functions, type_ignores=[]), path.name, "exec"), stubs)
            call = ast.parse(cells[index + 2].source).body[0].value
            number = call.args[0].value
            exercises.check(number, *(stubs[argument.id] for argument in call.args[1:]), **CONTEXT.get(number, {}))
            assert messages(capsys).startswith(f"Exercise {number}: not answered yet: `"), number


def test_a_function_that_forgets_to_return_is_told_so(capsys):
    def output_size(size, kernel_size, stride, padding):
        if padding == "valid":
            return (size - kernel_size) // stride + 1
        size = -(-size // stride)  # computed, but not returned

    exercises.check("1.3", output_size)
    assert messages(capsys) == ("Exercise 1.3: `output_size` returns None: every way through its body must end with "
                                "`return` and the result.")


def test_the_flip_check_says_what_is_wrong_even_when_the_lessons_network_barely_tells_mirror_images_apart(capsys):
    keras.utils.set_random_seed(2)  # this network averages each column: turning a photo upside down changes nothing
    upright = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
                                keras.layers.AveragePooling2D((64, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(2, activation="softmax")])
    exercises.check("3.3", lambda model, images: model.predict(images, verbose=0), model=upright, images=PHOTOS)
    assert messages(capsys) == "Exercise 3.3: it gives the plain prediction: the mirrored photos are not in it."


def test_quantize_may_round_halves_away_from_zero_as_tflite_does(capsys):
    def quantize_as_tflite(values, scale, zero_point, dtype):
        steps = values / scale
        info = np.iinfo(dtype)
        return np.clip(np.sign(steps) * np.floor(np.abs(steps) + 0.5) + zero_point, info.min, info.max).astype(dtype)

    exercises.check("6.2", quantize_as_tflite, **{**CONTEXT["6.2"], "photos": PHOTOS + 0.5})  # a resized photo's halves
    assert messages(capsys) == "Exercise 6.2: correct."


def test_an_answer_that_raises_is_reported_not_raised(capsys):
    exercises.check("1.3", lambda *args: 1 / 0)
    assert messages(capsys) == "Exercise 1.3: your answer raised ZeroDivisionError: division by zero"


def test_an_unknown_exercise_is_refused():
    with pytest.raises(KeyError, match="no exercise '9.9'"):
        exercises.check("9.9", 1)


def defined_names(source):
    """The names a cell's code assigns, defines or imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


@pytest.mark.parametrize("path", lessons.all_lessons(), ids=lambda path: path.stem)
def test_each_lesson_has_three_checked_exercises_that_still_run_without_their_solutions(path):
    cells = nbformat.read(path, as_version=4).cells
    lesson = str(int(path.stem[:2]))
    tags = [(cell.metadata.get("tags") or [None])[0] for cell in cells]
    checked = [index for index, tag in enumerate(tags) if tag == "check"]
    assert len(checked) >= 3, f"{path.name} has {len(checked)} checked exercises"
    defined = set(dir(builtins))
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and tags[index] != "solution":
            if tags[index] == "check":
                used = {node.id for node in ast.walk(ast.parse(cell.source))
                        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
                assert used <= defined, f"cell {index} uses {used - defined}, which only a solution cell defines"
            defined |= defined_names(cell.source)
    for number, index in enumerate(checked, start=1):
        assert tags[index - 3:index + 1] == [None, "exercise", "solution", "check"], (index, tags[index - 3:index + 1])
        assert cells[index - 3].source.startswith(f"**Exercise {lesson}.{number}: ")
        assert re.match(rf'exercises\.check\("{lesson}\.{number}"', cells[index].source), cells[index].source
