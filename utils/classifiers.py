"""The trained classifier behind `python -m utils.serve` (lesson 6): which model, its class names, how its photos
are prepared (as `utils.predict` prepares them), and the Grad-CAM overlay of an answer.

    classifier = Classifier(*find_model("models/03_cnn_from_scratch"))
    classifier.answer("photo.jpg", with_heatmap=True)   # {"label", "probability", "model", "probabilities", ...}
"""

import base64
import io
import threading

import numpy as np
import PIL.Image

from utils import evaluate, explain, images, paths, predict

LESSON = "03_cnn_from_scratch"  # whose best model is served by default
OVERLAY_SIDE = 480  # longer side of the Grad-CAM overlay sent back, in pixels: enough for the page


def find_model(path=None):
    """`(model_file, description)` for `--model` (see `predict.find_model`); by default lesson 3's best run's model."""
    return predict.find_model(paths.MODELS / LESSON if path is None else path)  # not a folder of the shell's


def class_names(model_file, count, given=None):
    """The `count` class names in output order: `given` ("cats,dogs"), else `class_counts` in metrics.json
    beside the model (`predict.recorded_classes`: lessons 3 to 5), else "class 0", ..."""
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
        self.model, self.description = predict.read_model(model_file), description
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
