"""Is it a bird? `python -m utils.predict MODEL IMAGE...` runs lesson 5's classifier on image files of any size."""

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from utils import birds, images, lessons, paths, runs

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


def find_model(path, birds_only=False):
    """`(model_file, description)`: the `.keras` file `path`, else the model of the lesson `path` names (its folder in
    `models/`, or its name): its best full run's, else its latest run's. utils.serve takes any lesson's.

    A relative path is taken from the shell's folder when it is there, else as `paths.resolve` takes it.

    Args:
        birds_only: refuse another lesson's folder or name (utils.predict): only lesson 5's models are bird
            classifiers (`check_bird_classes` checks a `.keras` file's own classes).
    """
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
    if birds_only and is_a_lesson and lesson != LESSON:
        raise ValueError(f"{paths.MODELS / lesson} holds lesson {lesson}'s models, not a bird classifier: "
                         "utils.predict answers \"is it a bird?\" with lesson 5's model: pass "
                         "models/05_bird_classifier (or its name), or the model.keras of one of its runs.")
    choices = [LESSON] if birds_only else [notebook.stem for notebook in lessons.all_lessons()
                                           if "training.fit(" in notebook.read_text(errors="replace")]  # save one
    if lesson not in choices:  # a typo, or lesson 1, 2 or 6, which save no model of their own
        problem = f"lesson {lesson} saves no model" if is_a_lesson else f"no lesson called {lesson}"
        raise FileNotFoundError(f"{problem}: pass {' or '.join(choices)} (or its folder in models/), or a .keras "
                                "model file.")
    model_file, note = runs.best_model(lesson)
    if model_file is None:
        raise FileNotFoundError(f"{note}: run the lesson (notebooks/{lesson}.ipynb) first, or pass a "
                                ".keras model file.")
    return model_file, f"{model_file} ({note})"


def load_model(path):
    """Loads lesson 5's bird classifier that `path` names (see `find_model`), refused in one line (ValueError,
    FileNotFoundError) when it is another classifier (see `check_bird_classes`) or one `is_it_a_bird` cannot use."""
    model_file = find_model(path, birds_only=True)[0]
    check_bird_classes(model_file)
    return read_model(model_file, birds_only=True)


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
    if lesson != LESSON and (paths.NOTEBOOKS / f"{lesson}.ipynb").is_file():
        raise ValueError(f"{model_file} is a model of lesson {lesson}, not a bird classifier: utils.predict needs "
                         "lesson 5's: pass models/05_bird_classifier, or the model.keras of one of its runs.")
    return lesson == LESSON


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
    return (PHOTO_PREPARATION, default_threshold(model_file)) if is_bird_model else ({}, None)


def default_threshold(model_path):
    """The threshold in `metrics.json` beside the model file when it is a probability (0 to 1), else 0.5."""
    try:
        threshold = json.loads((pathlib.Path(model_path).parent / "metrics.json").read_text()).get("threshold")
    except (OSError, ValueError, AttributeError):  # none, half-written or not a record: the default
        return 0.5
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        return 0.5  # none, or not a probability (NaN included): what --threshold would refuse
    return float(threshold)


def is_it_a_bird(model, image_paths, threshold=0.5):
    """Answers "is it a bird?" for image files of any size: P(bird) at least `threshold` says "bird".

    Returns:
        `(answers, errors)`: a list of `Answer`, and {path: message} for the files that could not be read.
    """
    check_classifier(model, f"the model {model.name!r}", birds_only=True)
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
    if not all(image.strip() for image in args.images):  # "" would be the current folder
        parser.error("an empty image path: pass the image files to ask about (JPEG, PNG, ...)")
    model_file, description = find_model(args.model, birds_only=True)  # cli.run says what is wrong in one line
    model = load_model(model_file)
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
