"""A lesson's trained classifier (lesson 6, and `python -m utils.predict`): which model file, loading and checking it,
its recorded classes and threshold, how its photos are prepared, and the `Classifier` behind `python -m utils.serve`.

    classifier = Classifier(*find_model("models/03_cnn_from_scratch"))
    classifier.answer("photo.jpg", with_heatmap=True)   # {"label", "probability", "model", "probabilities", ...}
"""

import base64
import io
import json
import pathlib
import threading

import numpy as np
import PIL.Image

from utils import birds, images, lessons, paths, runs  # Keras loads where used: a refused model name takes no time

LESSON = "03_cnn_from_scratch"  # whose best model is served by default
BIRD_LESSON = "05_bird_classifier"  # the lesson whose models say "bird" or "not bird"
OVERLAY_SIDE = 480  # longer side of the Grad-CAM overlay sent back, in pixels: enough for the page


def find_model(path=None, birds_only=False):
    """`(model_file, description)`: the `.keras` file `path`, else the model of the lesson `path` names (its folder in
    `models/`, or its name): its best full run's, else its latest run's. None: lesson 3's (`utils.serve`'s default).

    A relative path is taken from the shell's folder when it is there, else as `paths.resolve` takes it.

    Args:
        birds_only: refuse another lesson's folder or name (utils.predict): only lesson 5's models are bird
            classifiers (`check_bird_classes` checks a `.keras` file's own classes).
    """
    path = paths.MODELS / LESSON if path is None else path
    if not str(path).strip():
        raise ValueError("an empty model name: pass a lesson's folder in models/ (such as "
                         "models/05_bird_classifier), its name, or a .keras model file.")
    typed = pathlib.Path(path).expanduser()
    resolved = (typed if typed.exists() else paths.resolve(typed)).resolve()
    in_models = resolved.parent == paths.MODELS.resolve()
    if resolved.is_file() and resolved.suffix == ".keras":
        return resolved, str(resolved)
    if resolved.is_file() or (resolved.is_dir() and not in_models):
        raise ValueError(f"{resolved} is neither a .keras model file nor a lesson's folder in {paths.MODELS}: pass "
                         "a .keras model file, or a lesson's folder (such as models/05_bird_classifier) or its name.")
    a_name = len(typed.parts) == 1 and typed.suffix != ".keras"  # not there: a lesson's name, or a typo
    if not (in_models or a_name) or resolved.suffix == ".keras":  # models/typo.keras too: no lesson is called that
        raise FileNotFoundError(f"no model at {resolved}: pass a .keras model file, or a lesson's folder in "
                                "models/ (such as models/05_bird_classifier) or its name.")
    lesson = resolved.name  # a lesson's folder in models/, or its name
    is_a_lesson = (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file()
    if birds_only and is_a_lesson and lesson != BIRD_LESSON:
        raise ValueError(f"{paths.MODELS / lesson} holds lesson {lesson}'s models, not a bird classifier: "
                         "utils.predict answers \"is it a bird?\" with lesson 5's model: pass "
                         "models/05_bird_classifier (or its name), or the model.keras of one of its runs.")
    choices = [BIRD_LESSON] if birds_only else [notebook.stem for notebook in lessons.all_lessons()
                                                if "training.fit(" in notebook.read_text(errors="replace")]
    if lesson not in choices:  # a typo, or lesson 1, 2 or 6, which save no model of their own
        problem = f"lesson {lesson} saves no model" if is_a_lesson else f"no lesson called {lesson}"
        raise FileNotFoundError(f"{problem}: pass {' or '.join(choices)} (or its folder in models/), or a .keras "
                                "model file.")
    model_file, note = runs.best_model(lesson)
    if model_file is None:
        raise FileNotFoundError(f"{note}: run the lesson (notebooks/{lesson}.ipynb) first, or pass a "
                                ".keras model file.")
    return model_file, f"{model_file} ({note})"


def recorded_classes(model_file):
    """The class names in output order that the `metrics.json` beside `model_file` records, or None.

    Lessons 3 to 5 record `class_counts` there: 3's and 4's `{class: images}` (sorted, as Keras sorts class
    folders), lesson 5's `{split: {class: images}}` in the classes' order (`birds.CLASS_NAMES`).
    """
    try:
        counts = json.loads((pathlib.Path(model_file).parent / "metrics.json").read_text())["class_counts"]
        per_split = all(isinstance(value, dict) for value in counts.values())
        names = list(next(iter(counts.values()))) if per_split else sorted(counts)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return None
    return [str(name) for name in names] or None


def check_bird_classes(model_file):
    """True when `model_file` is known to classify "not bird" / "bird" (in that order), False when nothing says.

    The classes come from the `metrics.json` beside it (see `recorded_classes`), else from the lesson whose
    folder holds it: only lesson 5's models are bird classifiers. A `.keras` file elsewhere, with no record of
    its classes, is taken as it is (False): its last output is read as P(bird).

    Raises:
        ValueError: the model is another classifier, such as lesson 3's or 4's cats and dogs.
    """
    classes = recorded_classes(model_file)
    if classes is not None:
        if tuple(classes) == birds.CLASS_NAMES:
            return True
        raise ValueError(f"{model_file} is a classifier of {', '.join(classes)} (its metrics.json says), not of "
                         "not bird and bird: utils.predict needs lesson 5's bird classifier: pass "
                         "models/05_bird_classifier, or the model.keras of one of its runs.")
    try:  # the lesson whose folder in models/ holds it
        lesson = pathlib.Path(model_file).resolve().relative_to(paths.MODELS.resolve()).parts[0]
    except (ValueError, IndexError):  # not in models/
        return False
    if lesson != BIRD_LESSON and (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file():
        raise ValueError(f"{model_file} is a model of lesson {lesson}, not a bird classifier: utils.predict needs "
                         "lesson 5's: pass models/05_bird_classifier, or the model.keras of one of its runs.")
    return lesson == BIRD_LESSON


def read_model(model_file, birds_only=False):
    """The Keras model in `model_file` (see `check_classifier`), with one line instead of Keras' error for a damaged
    or foreign file."""
    import keras

    from utils import transfer

    try:  # lesson 4's models hold the kit's own layer, VggPreprocess: Keras loads it only when given the class
        model = keras.models.load_model(model_file, custom_objects={"VggPreprocess": transfer.VggPreprocess})
    except Exception as error:  # Keras raises several kinds for a damaged or foreign file
        first_line = (str(error).splitlines() or [""])[0][:200]
        if first_line.startswith("File not found") and pathlib.Path(model_file).is_file():  # Keras' words for it
            first_line = "damaged: a .keras file is a zip archive, and this one is not a complete one"
        raise ValueError(f"{model_file} is not a Keras model this version can load ({type(error).__name__}: "
                         f"{first_line}); run the lesson again to save a new one, or pass another run's "
                         "model.keras.") from None
    check_classifier(model, model_file, birds_only)
    return model


def check_classifier(model, name, birds_only=False):
    """Raises a ValueError calling the model `name` unless it takes fixed-size RGB photos and gives one probability
    per class (softmax) or one sigmoid unit: with `birds_only`, P(bird) from 1 output or 2 ("bird" second)."""
    try:
        inputs, outputs = tuple(model.input_shape), tuple(model.output_shape)
    except (AttributeError, TypeError, ValueError):  # a model not built, or a Keras that does not say
        inputs = outputs = None
    example = "lesson 5's (models/05_bird_classifier)" if birds_only else "lesson 3's or lesson 5's"
    if not (inputs and len(inputs) == 4 and inputs[3] == 3 and all(isinstance(side, int) for side in inputs[1:3])):
        raise ValueError(f"{name} takes input of shape {inputs}, not fixed-size colour photos: pass a model of "
                         f"(batch, height, width, 3) images, such as {example}.")
    if not (outputs and len(outputs) == 2 and isinstance(outputs[1], int)) or (birds_only and outputs[1] > 2):
        wanted = ("a bird classifier with 1 (sigmoid) or 2 (softmax) outputs" if birds_only
                  else "a classifier with one softmax output per class, or one sigmoid unit")
        raise ValueError(f"{name} gives outputs of shape {outputs}: pass {wanted}, such as {example}.")


def bird_settings(model_file):
    """`(photo preparation, threshold)` for a bird classifier (`check_bird_classes`), else `({}, None)`:
    how utils.serve prepares photos and labels them, as this command does, for the model it serves."""
    try:
        is_bird_model = check_bird_classes(model_file)
    except ValueError:  # another classifier, such as lesson 3's cats and dogs
        is_bird_model = False
    return (birds.PHOTO_PREPARATION, default_threshold(model_file)) if is_bird_model else ({}, None)


def default_threshold(model_path):
    """The threshold in `metrics.json` beside the model file when it is a probability (0 to 1), else 0.5."""
    try:
        threshold = json.loads((pathlib.Path(model_path).parent / "metrics.json").read_text()).get("threshold")
    except (OSError, ValueError, AttributeError):  # none, half-written or not a record: the default
        return 0.5
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        return 0.5  # none, or not a probability (NaN included): what --threshold would refuse
    return float(threshold)


def class_names(model_file, count, given=None):
    """The `count` class names in output order: `given` ("cats,dogs"), else `class_counts` in metrics.json
    beside the model (`recorded_classes`: lessons 3 to 5), else "class 0", ..."""
    if given is not None:
        names = [name.strip() for name in given.split(",")]
        if len(names) != count or not all(names) or len(set(names)) != count:
            raise ValueError(f"--classes {given!r} does not give {count} different names, one per output of "
                             "the model: list them comma-separated, in the model's output order.")
        return names
    names = recorded_classes(model_file) or []
    return names if len(names) == count else [f"class {i}" for i in range(count)]


class Classifier:
    """A loaded model, its class names and how photos are prepared for it; one photo at a time."""

    def __init__(self, model_file, description, classes=None):
        self.model, self.description = read_model(model_file), description
        self.classes = class_names(model_file, max(self.model.output_shape[1], 2), classes)
        self.size, self.lock = self.model.input_shape[1:3], threading.Lock()
        self.preparation, self.threshold = bird_settings(model_file)  # lesson 5's: as utils.predict
        self.explain_problem, self.decoding = None, threading.BoundedSemaphore(2)  # photos decoded at once
        self.answer_pixels(np.zeros((*self.size, 3), "float32"), True)  # warm-up: the first calls build graphs

    def answer_pixels(self, photo, with_heatmap):
        """`(probabilities, class answered, heat map of that class or None)` for one prepared photo, one at a time."""
        from utils import evaluate, explain

        with self.lock:
            probabilities = evaluate.as_probabilities(self.model.predict_on_batch(photo[None]))[0]
            best = int(np.argmax(probabilities) if self.threshold is None else probabilities[-1] >= self.threshold)
            if not with_heatmap or self.explain_problem:
                return probabilities, best, None
            try:
                return probabilities, best, explain.grad_cam(self.model, photo[None], best)[0]
            except ValueError as error:  # not a chain of layers, no convolution: answers without a heat map
                self.explain_problem = str(error)
                return probabilities, best, None

    def answer(self, path, with_heatmap=False):
        """What /predict answers for the photo file at `path`; raises PhotoError when it cannot be read."""
        with self.decoding:  # a 90-megapixel photo takes over a gigabyte to decode: two at a time
            photo = images.load_photo(path, self.size, **self.preparation)
            probabilities, best, heatmap = self.answer_pixels(photo, with_heatmap)
            answer = {"label": self.classes[best], "probability": float(probabilities[best]),
                      "model": self.description, "probabilities": dict(zip(self.classes, map(float, probabilities)))}
            if heatmap is not None:
                answer["heatmap"] = self.overlay(path, heatmap)
            elif with_heatmap:
                answer["heatmap_error"] = self.explain_problem
            return answer

    def overlay(self, path, heatmap):
        """The heat map over the upright photo (its centre square for lesson 5), as a PNG data URL."""
        from utils import explain

        photo = images.open_photo(path)
        if self.preparation.get("fit") == "crop":
            side = min(photo.size)
            left, top = (photo.width - side) // 2, (photo.height - side) // 2
            photo = photo.crop((left, top, left + side, top + side))
        photo.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE))
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.round(explain.overlay(np.asarray(photo), heatmap) * 255).astype(np.uint8)).save(
            buffer, "PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
