"""The trained classifier behind `python -m utils.serve` (lesson 6): which model, its class names, how its photos
are prepared (as `utils.predict` prepares them), and the Grad-CAM overlay of an answer.

    classifier = Classifier(*find_model("models/03_cnn_from_scratch"))
    classifier.answer("photo.jpg", with_heatmap=True)   # {"label", "probability", "model", "probabilities", ...}
"""

import base64
import io
import pathlib
import threading

import numpy as np
import PIL.Image

from utils import evaluate, explain, images, paths, predict, runs

LESSON = "03_cnn_from_scratch"  # whose best model is served by default
OVERLAY_SIDE = 480  # longer side of the Grad-CAM overlay sent back, in pixels: enough for the page


def find_model(path=None):
    """`(model_file, description)`: the `.keras` file `path`, else lesson 3's best run's model. `path` may be a
    lesson's folder in `models/` or its name: its best full run, else its latest (`predict.lesson_model`)."""
    if path is None:
        model_file, note = runs.best_model(LESSON)
        if model_file is None:
            raise FileNotFoundError(f"{note}: run lesson 3 (notebooks/{LESSON}.ipynb) first, or pass --model "
                                    "with a .keras model file.")
        return pathlib.Path(model_file), f"{model_file} ({note})"
    model_file = pathlib.Path(path).expanduser().resolve()
    if not model_file.exists() and path.strip():  # a lesson's name, or models/<lesson> from another folder
        given = pathlib.Path(path).expanduser()
        in_models = paths.MODELS / given if len(given.parts) == 1 else paths.resolve(given)
        model_file = in_models.resolve() if in_models.is_dir() else model_file
    if model_file.is_dir():
        if model_file.parent == paths.MODELS.resolve():
            return predict.lesson_model(model_file.name)
        raise ValueError(f"{model_file} is a folder, not a lesson's folder in {paths.MODELS}: pass --model a "
                         "lesson's folder (such as models/03_cnn_from_scratch) or the model.keras of a training run.")
    if not model_file.is_file():
        raise FileNotFoundError(f"no model file at {model_file}: pass --model with the model.keras of a "
                                "training run (models/<lesson>/runs/<run>/model.keras), or a lesson's folder "
                                "(models/<lesson>: its best run).")
    if model_file.suffix != ".keras":
        raise ValueError(f"{model_file} is not a .keras model file: pass --model with the model.keras of a "
                         "training run.")
    return model_file, str(model_file)


def load_model(model_file):
    """The Keras model in `model_file`, refused in one line unless it classifies fixed-size RGB photos."""
    model = predict.read_model(model_file)
    inputs, outputs = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if not (isinstance(inputs, tuple) and len(inputs) == 4 and inputs[3] == 3
            and all(isinstance(size, int) for size in inputs[1:3])):
        raise ValueError(f"{model_file} takes input of shape {inputs}; utils.serve needs a model of "
                         "fixed-size colour photos, (batch, height, width, 3), such as lesson 3's.")
    if not (isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[1], int)):
        raise ValueError(f"{model_file} gives outputs of shape {outputs}; utils.serve needs a classifier "
                         "with one softmax output per class, or one sigmoid unit.")
    return model


def class_names(model_file, count, given=None):
    """The `count` class names in output order: `given` ("cats,dogs"), else `class_counts` in metrics.json
    beside the model (`predict.recorded_classes`: lessons 3 and 5), else "class 0", ..."""
    if given is not None:
        names = [name.strip() for name in given.split(",")]
        if len(names) != count or not all(names) or len(set(names)) != count:
            raise ValueError(f"--classes {given!r} does not give {count} different names, one per output of "
                             "the model: list them comma-separated, in the model's output order.")
        return names
    names = predict.recorded_classes(model_file) or []
    return names if len(names) == count else [f"class {i}" for i in range(count)]


class Classifier:
    """A loaded model, its class names and how photos are prepared for it; one photo at a time."""

    def __init__(self, model_file, description, classes=None):
        self.model, self.description = load_model(model_file), description
        self.classes = class_names(model_file, max(self.model.output_shape[1], 2), classes)
        self.size, self.lock = self.model.input_shape[1:3], threading.Lock()
        self.preparation, self.threshold = predict.bird_settings(model_file)  # lesson 5's: as utils.predict
        self.explain_problem, self.decoding = None, threading.BoundedSemaphore(2)  # photos decoded at once
        self.answer_pixels(np.zeros((*self.size, 3), "float32"), True)  # warm-up: the first calls build graphs

    def answer_pixels(self, photo, with_heatmap):
        """`(probabilities, class answered, heat map of that class or None)` for one prepared photo, one at a time."""
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
