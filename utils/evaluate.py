"""Evaluating a classifier (lesson 3, reused by lessons 4 to 6): predictions, error panels, reports, submissions."""

import dataclasses
import pathlib

import numpy as np
import sklearn.metrics

from utils import explain, images as image_files, plots, runs, safely


@dataclasses.dataclass
class Predictions:
    """A model's class probabilities for a dataset, with the true labels."""

    probabilities: np.ndarray  # (images, classes); rows sum to 1
    labels: np.ndarray  # the true class index of each image
    class_names: list  # in index order
    file_paths: list | None = None  # the image files in the same order, when known

    @property
    def predicted(self):
        """The predicted class index of each image."""
        return self.probabilities.argmax(axis=1)

    @property
    def correct(self):
        """True where the prediction matches the label."""
        return self.predicted == self.labels


def as_probabilities(outputs):
    """Turns model outputs into (images, classes) probabilities; one sigmoid output p becomes (1 - p, p)."""
    outputs = np.asarray(outputs, dtype=float)
    positive = outputs.reshape(-1, 1)
    return outputs if outputs.ndim == 2 and outputs.shape[1] > 1 else np.hstack([1 - positive, positive])


def predict(model, dataset, class_names=None):
    """Runs a model over a dataset and returns its `Predictions`, each next to its label.

    Args:
        model: a Keras classifier ending in softmax (or one sigmoid unit).
        dataset: batched (images, labels); its `file_paths` are kept only when it is not shuffled.
        class_names: defaults to the dataset's `class_names`.
    """
    probabilities, labels = [], []
    for images, batch_labels in dataset:
        probabilities.append(as_probabilities(model.predict_on_batch(images)))
        labels.append(np.asarray(batch_labels))
    probabilities, labels = np.concatenate(probabilities), np.concatenate(labels)
    class_names = list(class_names or getattr(dataset, "class_names", None) or range(probabilities.shape[1]))
    in_order = not getattr(dataset, "shuffled", True)  # only then do its file_paths match the predictions
    file_paths = list(getattr(dataset, "file_paths", None) or []) if in_order else []
    return Predictions(probabilities, labels.astype(int), class_names, file_paths or None)


def error_panels(predictions, count=4, seed=0):
    """The five error-analysis selections (lesson 3), as {title: indices of up to `count` images}.

    Random correct and random incorrect images (the same ones for the same `seed`); per class, its correct images
    and the images wrongly called it, both highest probability of that class first; and the images whose top two
    class probabilities are closest, most uncertain first.
    """
    correct, labels, predicted = predictions.correct, predictions.labels, predictions.predicted
    probabilities = predictions.probabilities
    shuffled = np.random.default_rng(seed).permutation(len(correct))
    by_class = np.argsort(-probabilities, axis=0, kind="stable").T  # row c: images by P(class c), highest first
    top_two = np.sort(probabilities, axis=1)[:, -2:]

    def first(candidates, order):  # the first `count` indices in `order` where the mask `candidates` is True
        return order[candidates[order]][:count]

    return {"random correct": first(correct, shuffled),
            "random incorrect": first(~correct, shuffled),
            **{f"most confident correct: {name}": first(correct & (labels == c), by_class[c])
               for c, name in enumerate(predictions.class_names)},
            **{f"most confident incorrect: predicted {name}": first(~correct & (predicted == c), by_class[c])
               for c, name in enumerate(predictions.class_names)},
            "most uncertain": np.argsort(top_two[:, 1] - top_two[:, 0], kind="stable")[:count]}


def show_panel(predictions, indices, title, size=2.5, model=None):
    """Shows selected images with "true → predicted (probability)" titles.

    Args:
        predictions: `Predictions` with `file_paths` (made on an unshuffled dataset).
        size: inches per image.
        model: the model that made the predictions: each image gets its Grad-CAM overlay underneath.

    Returns:
        The matplotlib Figure, or None when there is nothing to show.
    """
    if len(indices) == 0:
        print(f"{title}: none")
        return None
    if predictions.file_paths is None:
        raise ValueError("these predictions have no file paths: predict on a dataset made with shuffle=False")
    photos = [np.asarray(image_files.open_photo(predictions.file_paths[i])) for i in indices]  # upright
    names = predictions.class_names
    titles = [f"{names[predictions.labels[i]]} → {names[predictions.predicted[i]]}\n"
              f"p={predictions.probabilities[i].max():.2f}" for i in indices]
    if model is None:
        return plots.show_images(photos, titles=titles, rows=1, size=size, suptitle=title)
    batch = np.stack([image_files.load_photo(predictions.file_paths[i], model.input_shape[1:3]) for i in indices])
    heatmaps = explain.grad_cam(model, batch, class_index=predictions.predicted[indices])
    return explain.show_grad_cam(photos, heatmaps, titles, suptitle=title, size=size)


def report(predictions):
    """Precision, recall, F1 and support per class: {class name: {"precision", ...}}, plus "accuracy"."""
    precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(
        predictions.labels, predictions.predicted, labels=range(len(predictions.class_names)), zero_division=0)
    result = {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                     "f1": float(f1[i]), "support": int(support[i])}
              for i, name in enumerate(predictions.class_names)}
    result["accuracy"] = float(np.mean(predictions.correct))
    return result


def submission(model, test_folder, path):
    """Writes a Kaggle dogs-vs-cats submission (`id,label` with P(dog)) and returns its number of rows.

    Args:
        model: the trained classifier; its input size sets the image size.
        test_folder: folder of test images named `<id>.jpg`, searched with its subfolders.
    """
    files = sorted((p for p in pathlib.Path(test_folder).rglob("*") if image_files.is_image_name(p)),
                   key=lambda p: (int(p.stem) if p.stem.isdigit() else float("inf"), p.stem))
    if not files:
        raise ValueError(f"no test images in {test_folder}: download the Kaggle test set with "
                         "`python -m utils.data download dogscats --source kaggle`")
    bad = [p.name for p in files if not p.stem.isdigit()]
    if bad:
        raise ValueError(f"Kaggle test images are named <id>.jpg, and {bad[:5]} are not: pass the folder of Kaggle's "
                         "test photos (`python -m utils.data download dogscats --source kaggle`), or move these out.")
    lines = ["id,label"]  # files are in id order, so the rows are too
    for start in range(0, len(files), 64):  # 64 photos per prediction batch
        chunk = files[start:start + 64]
        batch = np.stack([image_files.load_photo(p, model.input_shape[1:3]) for p in chunk])  # as in training
        dogs = as_probabilities(model.predict_on_batch(batch))[:, 1]
        positive = np.clip(dogs, 0.02, 0.98)  # Kaggle's log loss punishes a confident mistake without limit
        lines += [f"{int(p.stem)},{value:.4f}" for p, value in zip(chunk, positive)]
    runs.check_unfinished(pathlib.Path(path).parent)  # a finished run's folder is never written again
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    safely.write_text(path, "".join(f"{line}\r\n" for line in lines))  # CSV's line ending (RFC 4180)
    return len(lines) - 1
