"""Judging a yes/no classifier beyond accuracy: the four groups, precision, recall, thresholds (lesson 5)."""

import os

import numpy as np
import sklearn.metrics

GROUPS = ("true positives", "true negatives", "false positives", "false negatives")
HEADLESS_RUNNERS = ("papermill", "nbclient", "nbconvert", "utils.lessons", "pytest")


def _check(labels, scores):
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be two 1-D arrays "
                         "of the same length: one label (0 or 1) and one score per image.")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (no) or 1 (yes); for class ids of a two-class model "
                         "pass `labels == positive_class`.")
    return labels.astype(int), scores


def groups(labels, scores, threshold=0.5):
    """Indices of the images in each of the four groups at a threshold.

    Args:
        labels: true labels, 1 for "yes" (bird).
        scores: the model's probability of "yes", one per image.
        threshold: say "yes" when the score is at least this.

    Returns:
        A dict from each name in `GROUPS` to the indices of its images, in image order.
    """
    labels, scores = _check(labels, scores)
    said_yes = scores >= threshold
    return {"true positives": np.flatnonzero(said_yes & (labels == 1)),
            "true negatives": np.flatnonzero(~said_yes & (labels == 0)),
            "false positives": np.flatnonzero(said_yes & (labels == 0)),
            "false negatives": np.flatnonzero(~said_yes & (labels == 1))}


def scores_at(labels, scores, threshold=0.5):
    """Accuracy, precision, recall, F1 and the four counts at one threshold (arguments as for `groups`).

    Returns:
        A dict: threshold, accuracy, precision (0 when nothing is called "yes"), recall, f1,
        and the count of each group in `GROUPS`.
    """
    labels, scores = _check(labels, scores)
    predicted = (scores >= threshold).astype(int)
    precision, recall, f1, _ = sklearn.metrics.precision_recall_fscore_support(
        labels, predicted, average="binary", zero_division=0)
    counts = {name: len(indices) for name, indices in groups(labels, scores, threshold).items()}
    return {"threshold": float(threshold),
            "accuracy": float(sklearn.metrics.accuracy_score(labels, predicted)),
            "precision": float(precision), "recall": float(recall), "f1": float(f1), **counts}


def sweep(labels, scores, thresholds=np.linspace(0.05, 0.95, 19)):
    """`scores_at` for each threshold, in the order given: how precision and recall trade."""
    return [scores_at(labels, scores, threshold) for threshold in thresholds]


def baselines(labels, model_positive_rate):
    """Two useless classifiers to measure a model against: "never" always says no, "chance" says yes at random.

    Args:
        labels: true labels (1 = yes).
        model_positive_rate: the share of images the model calls "yes"; "chance" says yes as often.

    Returns:
        {"never": {"accuracy", "precision", "recall"}, "chance": {...}}, the latter's expected values.
    """
    labels = np.asarray(labels).astype(int)
    never = np.zeros_like(labels)
    prevalence = float(labels.mean())
    return {
        "never": {"accuracy": float(sklearn.metrics.accuracy_score(labels, never)),
                  "precision": float(sklearn.metrics.precision_score(labels, never, zero_division=0)),
                  "recall": float(sklearn.metrics.recall_score(labels, never, zero_division=0))},
        "chance": {"accuracy": prevalence * model_positive_rate
                   + (1 - prevalence) * (1 - model_positive_rate),
                   "precision": prevalence, "recall": float(model_positive_rate)},
    }


def running_interactively():
    """True in a live Jupyter session, False when a notebook runs headless or outside Jupyter.

    COURSE_INTERACTIVE=0 or 1 overrides the guess; otherwise a kernel started by one of
    `HEADLESS_RUNNERS` (its parent process) counts as headless.
    """
    if os.environ.get("COURSE_INTERACTIVE") in ("0", "1"):
        return os.environ["COURSE_INTERACTIVE"] == "1"
    try:
        import psutil
        from IPython import get_ipython
    except ImportError:
        return False
    if not hasattr(get_ipython(), "kernel"):
        return False
    try:
        parent = " ".join(psutil.Process(os.getppid()).cmdline())
    except (OSError, psutil.Error):
        return False
    return not any(name in parent for name in HEADLESS_RUNNERS)


def slider(labels, scores, start=0.5):
    """Returns an ipywidgets slider that shows the scores and the trade-off at any threshold."""
    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython import display

    from utils import plots

    rows = sweep(labels, scores, np.linspace(0.01, 0.99, 99))

    def show(threshold):
        row = scores_at(labels, scores, threshold)
        print(f"threshold {threshold:.2f}: precision {row['precision']:.1%}, recall {row['recall']:.1%}, "
              f"F1 {row['f1']:.1%}, false alarms {row['false positives']:,}, missed {row['false negatives']:,}")
        figure = plots.threshold_tradeoff(rows, threshold, size=3.5)
        display.display(figure)
        plt.close(figure)

    control = ipywidgets.FloatSlider(value=start, min=0.01, max=0.99, step=0.01,
                                     description="threshold", continuous_update=False)
    return ipywidgets.interactive(show, threshold=control)
