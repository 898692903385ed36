"""Is it a bird? `python -m utils.predict MODEL IMAGE...` runs lesson 5's classifier on image files of any size."""

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from utils import birds, images, paths, runs

PHOTO_PREPARATION = {"fit": "crop", "resample": "lanczos"}  # how utils.birds prepared the CUB photos
LESSON = "05_bird_classifier"  # the lesson whose models say "bird" or "not bird"


@dataclasses.dataclass
class Answer:
    """One image's verdict."""

    path: pathlib.Path
    probability: float  # P(bird)
    threshold: float

    @property
    def is_bird(self):
        return self.probability >= self.threshold

    def __str__(self):
        verdict = "bird" if self.is_bird else "not a bird"
        return f"{self.path}: {verdict} (P(bird) = {self.probability:.1%}, threshold {self.threshold:.2f})"


def find_model(path):
    """`(model_file, description)`: the `.keras` file to load for `path`, and which run it comes from.

    Args:
        path: a `.keras` file, or lesson 5's folder in `models/` or its name ("05_bird_classifier"): that
            lesson's best full run, else its latest run. Another lesson's folder or name is refused: its
            models are not bird classifiers (`check_bird_classes` checks a `.keras` file's own classes).
    """
    if not str(path).strip():
        raise ValueError("an empty model name: pass a lesson's folder in models/ (such as "
                         "models/05_bird_classifier), its name, or a .keras model file.")
    resolved = paths.resolve(path)
    in_models = resolved.parent.resolve() == paths.MODELS.resolve()
    if resolved.is_file():
        if resolved.suffix != ".keras":
            raise ValueError(f"{resolved} is not a .keras model file: pass the lesson's folder in models/, or "
                             "the model.keras of one of its runs.")
        return resolved, str(resolved)
    if resolved.is_dir() and not in_models:
        raise ValueError(f"{resolved} is a folder, not a lesson's folder in {paths.MODELS}: pass a lesson's "
                         "folder (such as models/05_bird_classifier), its name, or a .keras model file.")
    if not resolved.is_dir() and resolved.suffix == ".keras":
        raise FileNotFoundError(f"no model at {resolved}: run lesson 5 (notebooks/05_bird_classifier.ipynb) "
                                "first, then pass models/05_bird_classifier.")
    if len(pathlib.Path(path).parts) > 1 and not in_models:
        raise FileNotFoundError(f"{resolved} does not exist: pass a lesson's folder in models/ (such as "
                                "models/05_bird_classifier), its name, or a .keras model file.")
    lesson = resolved.name  # a lesson's folder in models/, or its name: lesson 5's only
    if lesson == LESSON:
        return lesson_model(lesson)
    if (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file():
        raise ValueError(f"{paths.MODELS / lesson} holds lesson {lesson}'s models, not a bird classifier: "
                         "utils.predict answers \"is it a bird?\" with lesson 5's model: pass "
                         "models/05_bird_classifier (or its name), or the model.keras of one of its runs.")
    raise FileNotFoundError(f"no lesson called {lesson}: utils.predict answers \"is it a bird?\" with lesson 5's "
                            "model: pass 05_bird_classifier, its folder models/05_bird_classifier, or a .keras "
                            "model file.")


def lesson_model(lesson):
    """`(model_file, description)` for a lesson's name: its best full run's model, else its latest run's.

    Any lesson that saves a model (utils.serve serves lesson 3's, 4's or 5's); `find_model` takes lesson 5's only.
    """
    if not (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file():
        with_a_model = [notebook.stem for notebook in sorted(paths.NOTEBOOKS.glob("*.ipynb"))
                        if "training.fit(" in notebook.read_text(errors="replace")]  # they save a model
        raise FileNotFoundError(f"no lesson called {lesson}; lessons with a model: {', '.join(with_a_model)}. "
                                "Pass one of them, its folder in models/, or a .keras model file.")
    model_file, note = runs.best_model(lesson)
    if model_file is None:
        raise FileNotFoundError(f"{note}: run the lesson (notebooks/{lesson}.ipynb) first, or pass a "
                                ".keras model file.")
    return model_file, f"{model_file} ({note})"


def load_model(path):
    """Loads the classifier `path` names (see `find_model`).

    Raises:
        FileNotFoundError: there is no such model.
        ValueError: a model of other classes than "not bird" and "bird" (see `check_bird_classes`), a file
            Keras cannot load, or a model `is_it_a_bird` cannot use (see `check_classifier`).
    """
    model_file = find_model(path)[0]
    check_bird_classes(model_file)
    model = read_model(model_file)
    check_classifier(model, model_file)
    return model


def recorded_classes(model_file):
    """The class names in output order that the `metrics.json` beside `model_file` records, or None.

    Lessons 3 and 5 record `class_counts` there: lesson 3's `{class: images}` (sorted, as Keras sorts class
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
    if not (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file():
        return False
    if lesson == LESSON:
        return True
    raise ValueError(f"{model_file} is a model of lesson {lesson}, not a bird classifier: utils.predict needs "
                     "lesson 5's: pass models/05_bird_classifier, or the model.keras of one of its runs.")


def read_model(model_file):
    """`keras.models.load_model`, with one line instead of Keras' error for a damaged or foreign file."""
    import keras

    try:
        return keras.models.load_model(model_file)
    except Exception as error:  # Keras raises several kinds for a damaged or foreign file
        first_line = (str(error).splitlines() or [""])[0][:200]
        if first_line.startswith("File not found") and pathlib.Path(model_file).is_file():  # Keras' words for it
            first_line = "damaged: a .keras file is a zip archive, and this one is not a complete one"
        raise ValueError(f"{model_file} is not a Keras model this version can load ({type(error).__name__}: "
                         f"{first_line}); run the lesson again to save a new one, or pass another run's "
                         "model.keras.") from None


def check_classifier(model, name):
    """Raises a ValueError calling the model `name` unless it takes fixed-size RGB images and gives P(bird):
    1 output (sigmoid) or 2 (softmax, "bird" second)."""
    inputs, outputs = _shape(model, "input_shape"), _shape(model, "output_shape")
    per_image = "an unknown" if inputs is None else str(inputs[1:])
    if inputs is None or len(inputs) != 4 or inputs[3] != 3:
        raise ValueError(f"{name} takes {per_image} input, not RGB photos; utils.predict needs a model "
                         "of (height, width, 3) colour images, such as lesson 5's (models/05_bird_classifier).")
    if None in inputs[1:3]:
        raise ValueError(f"{name} takes images of any size ({per_image}); utils.predict needs a model "
                         "with a fixed input size, such as lesson 5's (models/05_bird_classifier).")
    if outputs is None or outputs[1:] not in ((1,), (2,)):
        described = ("an unknown number of outputs" if outputs is None else f"{outputs[1]} outputs"
                     if len(outputs) == 2 else f"outputs of shape {outputs[1:]}")
        raise ValueError(f"{name} gives {described} per image; utils.predict needs a bird classifier with 1 "
                         "(sigmoid) or 2 (softmax) outputs, such as lesson 5's (models/05_bird_classifier).")


def _shape(model, attribute):
    """`model.input_shape` or `.output_shape` as a tuple (batch first), or None when it is not one shape."""
    try:
        shape = tuple(getattr(model, attribute))
    except (AttributeError, TypeError, ValueError):  # a model not built, or a Keras that does not say
        return None
    return shape if shape and all(size is None or isinstance(size, int) for size in shape) else None


def bird_settings(model_file):
    """`(photo preparation, threshold)` for a bird classifier (`check_bird_classes`), else `({}, None)`:
    how utils.serve prepares photos and labels them, as this command does, for the model it serves."""
    try:
        is_bird_model = check_bird_classes(model_file)
    except ValueError:  # another classifier, such as lesson 3's cats and dogs
        is_bird_model = False
    return (PHOTO_PREPARATION, default_threshold(model_file)) if is_bird_model else ({}, None)


def default_threshold(model_path):
    """The threshold in `metrics.json` beside the model file, else 0.5."""
    try:
        threshold = json.loads((pathlib.Path(model_path).parent / "metrics.json").read_text()).get("threshold")
    except (OSError, ValueError, AttributeError):  # none, half-written or not a record: the default
        return 0.5
    return float(threshold) if isinstance(threshold, (int, float)) else 0.5


def is_it_a_bird(model, image_paths, threshold=0.5):
    """Answers "is it a bird?" for image files of any size: P(bird) at least `threshold` says "bird".

    Returns:
        `(answers, errors)`: a list of `Answer`, and {path: message} for the files that could not be read.
    """
    check_classifier(model, f"the model {model.name!r}")
    loaded, errors = {}, {}
    for path in map(pathlib.Path, image_paths):
        try:
            loaded[path] = images.load_photo(path, model.input_shape[1:3], **PHOTO_PREPARATION)
        except (FileNotFoundError, ValueError) as error:
            errors[path] = str(error)
    if not loaded:
        return [], errors
    outputs = np.asarray(model.predict_on_batch(np.stack(list(loaded.values()))), dtype=float)
    # P(bird) is the last column: a sigmoid's one output, or a 2-way softmax's "bird" (CLASS_NAMES in utils.birds)
    return [Answer(path, float(p), threshold) for path, p in zip(loaded, outputs[:, -1])], errors


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.predict",
                                     description="Is it a bird? P(bird) for each image file.")
    parser.add_argument("model", help="a lesson's folder or name (models/05_bird_classifier: its best full run, "
                                      "else its latest run, sample runs included; it says which) or a .keras file")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...), any size")
    parser.add_argument("--threshold", type=float, default=None,
                        help="P(bird) needed to say bird (default: the lesson's, from the metrics.json beside "
                             "the model; 0.5 when there is none)")
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error(f"--threshold {args.threshold}: use a probability between 0 and 1")
    typed = pathlib.Path(args.model).expanduser()
    # from the shell's folder, else a lesson name ("" would be the shell's folder: find_model refuses it)
    where = str(typed.resolve()) if args.model.strip() and typed.exists() else args.model
    try:
        model_file, description = find_model(where)
        model = load_model(model_file)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"using {description}", file=sys.stderr)
    if not check_bird_classes(model_file):
        print(f"note: nothing records the classes of {model_file} (no class_counts in a metrics.json beside it, "
              "and it is not in a lesson's folder in models/): its last output is read as P(bird).",
              file=sys.stderr)
    threshold = default_threshold(model_file) if args.threshold is None else args.threshold
    answers, errors = is_it_a_bird(model, args.images, threshold)
    for answer in answers:
        print(answer)
    for message in errors.values():
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    from utils import cli

    sys.exit(cli.run(main))
