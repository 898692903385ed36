"""Figures for the lessons: image grids and side-by-side comparisons.

Every function builds a matplotlib figure and returns it, so a lesson shows it
and a test can look inside it. In a notebook end the call with `;` to show
the figure once.
"""

import math

import matplotlib.pyplot as plt
import numpy as np


def _as_displayable(image):
    """Squeezes a trailing channel of 1 and rescales float images outside 0–1."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype.kind == "f" and image.ndim == 3 and (image.min() < 0 or image.max() > 1):
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image


def show_images(images, titles=None, rows=None, cmap="gray", size=2.5, suptitle=None,
                colorbar=False):
    """Shows images in a grid (lesson 1 onwards).

    Args:
        images: a sequence of arrays, each (height, width) for grayscale or
            (height, width, 3) for colour; uint8 or float.
        titles: one title per image, or None.
        rows: number of rows (default: as square a grid as fits).
        cmap: colour map for grayscale images.
        size: inches per image.
        suptitle: a title over the whole figure.
        colorbar: add a colour scale next to each grayscale image (useful for
            feature maps with negative values).

    Returns:
        The matplotlib Figure; it has one visible Axes per image.
    """
    images = list(images)
    if not images:
        raise ValueError("show_images got no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    rows = rows or max(1, round(math.sqrt(len(images))))
    columns = math.ceil(len(images) / rows)
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows),
                                squeeze=False, layout="constrained")
    for index, axis in enumerate(axes.flat):
        if index >= len(images):
            axis.remove()
            continue
        picture = axis.imshow(_as_displayable(images[index]), cmap=cmap)
        if colorbar and picture.get_array().ndim == 2:
            figure.colorbar(picture, ax=axis, shrink=0.8)
        axis.set_xticks([])
        axis.set_yticks([])
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=10)
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def compare(original, filtered, titles=("original", "filtered"), cmap="gray", size=4):
    """Shows an image and a filtered version of it side by side (lesson 1).

    Args:
        original: the input image.
        filtered: the filter's output (may be a little smaller).
        titles: the two panel titles.
        cmap: colour map for grayscale images.
        size: inches per panel.

    Returns:
        The matplotlib Figure, with two Axes.
    """
    return show_images([original, filtered], titles=list(titles), rows=1, cmap=cmap,
                       size=size)


def matrix(values, title=None, fmt="{:.0f}", size=0.45):
    """Shows a small 2-D array as a grid of numbers on a gray image (lesson 1).

    Args:
        values: 2-D array, up to about 30×30.
        title: the figure title.
        fmt: how each number is printed.
        size: inches per cell.

    Returns:
        The matplotlib Figure, with one Axes.
    """
    values = np.asarray(values)
    height, width = values.shape
    figure, axis = plt.subplots(figsize=(max(2, size * width), max(2, size * height)),
                                layout="constrained")
    axis.imshow(values, cmap="gray")
    middle = (values.max() + values.min()) / 2
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, fmt.format(value), ha="center", va="center", fontsize=7,
                  color="black" if value > middle else "white")
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title)
    return figure


def history(history, metrics=("loss", "accuracy"), size=4.5):
    """Training and validation curves, one panel per metric, side by side (lesson 3).

    Args:
        history: a dict of lists per metric (`TrainingRun.history`,
            `keras.callbacks.History.history`) or a Keras History.
        metrics: which metrics to draw; each panel shows `name` and `val_name`.
        size: inches per panel.

    Returns:
        The matplotlib Figure, one Axes per metric, x axis "epoch".
    """
    history = getattr(history, "history", history)
    missing = [name for name in metrics if name not in history]
    if missing:
        raise ValueError(f"the history has no {missing}; it has {sorted(history)}")
    figure, axes = plt.subplots(1, len(metrics), figsize=(size * len(metrics), size * 0.75),
                                squeeze=False, layout="constrained")
    for axis, name in zip(axes.flat, metrics):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], "o-", label="training")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], "o-", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    return figure


def confusion_matrix(y_true, y_pred, class_names, size=4, title="confusion matrix"):
    """A confusion matrix with counts, true classes down, predicted across (lesson 3).

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        class_names: names in index order.
        size: figure side in inches.
        title: the figure title.

    Returns:
        The matplotlib Figure.
    """
    import sklearn.metrics

    figure, axis = plt.subplots(figsize=(size, size), layout="constrained")
    sklearn.metrics.ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=class_names,
        ax=axis, colorbar=False, cmap="Blues")
    axis.set_title(title)
    return figure


def bar_chart(values, series=None, title=None, ylabel=None, ylim=None, fmt="{:.0%}",
              reference=None, reference_label=None, size=(7, 3.5)):
    """Shows numbers as bars, written on top of each bar (lesson 2).

    Args:
        values: a dict from bar label to a number, or to a sequence of numbers,
            one per entry of `series` (grouped bars, for example one group per
            model and one bar per test set).
        series: names of the bars within each group (shown in a legend), or
            None when each label has a single number.
        title: the figure title.
        ylabel: the label of the vertical axis.
        ylim: (bottom, top) of the vertical axis, or None to fit the bars.
        fmt: how the number on each bar is written.
        reference: draw a dashed horizontal line at this value (chance level,
            a baseline), or None.
        reference_label: the line's name in the legend.
        size: (width, height) of the figure in inches.

    Returns:
        The matplotlib Figure, with one Axes whose patches are the bars, in
        order: all groups' first bars, then all groups' second bars, and so on.

    Raises:
        ValueError: no values, or a group with a different number of values
            than `series` names.
    """
    if not values:
        raise ValueError("bar_chart got no values to show")
    labels = list(values)
    rows = [np.atleast_1d(np.asarray(values[label], dtype=float)) for label in labels]
    names = list(series) if series is not None else [None]
    for label, row in zip(labels, rows):
        if row.ndim != 1 or len(row) != len(names):
            raise ValueError(f"{label!r} has {row.size} values but there are {len(names)} "
                             f"series {names}: give one number per series")
    heights = np.stack(rows)
    width = 0.8 / len(names)
    positions = np.arange(len(labels))
    figure, axis = plt.subplots(figsize=size, layout="constrained")
    for index, name in enumerate(names):
        offsets = positions + (index - (len(names) - 1) / 2) * width
        bars = axis.bar(offsets, heights[:, index], width=width * 0.95, label=name)
        axis.bar_label(bars, labels=[fmt.format(value) for value in heights[:, index]],
                       fontsize=9, padding=2)
    if reference is not None:
        axis.axhline(reference, color="gray", linestyle="--", linewidth=1, label=reference_label)
    axis.set_xticks(positions, [str(label) for label in labels])
    if ylim is not None:
        axis.set_ylim(*ylim)
    if ylabel:
        axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    if series is not None or reference_label:
        axis.legend(fontsize=9, loc="upper right")
    return figure


# Lesson 5: precision and recall of a yes/no classifier ----------------------


def precision_recall_curve(labels, scores, threshold=None, title="precision-recall curve", size=4.5):
    """Precision against recall over every threshold, from `sklearn.metrics` (lesson 5).

    A horizontal dashed line marks a classifier that guesses at random (its
    precision is the share of positives, whatever its recall).

    Args:
        labels: true labels, 1 for the positive class (bird).
        scores: the model's probability of the positive class.
        threshold: mark the point of this threshold on the curve, or None.
        title: the figure title.
        size: figure height in inches.

    Returns:
        The matplotlib Figure, one Axes: recall across, precision up.
    """
    import sklearn.metrics

    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    precision, recall, thresholds = sklearn.metrics.precision_recall_curve(labels, scores)
    average = sklearn.metrics.average_precision_score(labels, scores)
    figure, axis = plt.subplots(figsize=(size * 1.1, size), layout="constrained")
    axis.plot(recall, precision, label=f"model (average precision {average:.2f})")
    axis.axhline(labels.mean(), color="gray", linestyle="--",
                 label=f"random guessing ({labels.mean():.0%})")
    if threshold is not None:
        predicted = scores >= threshold
        point_recall = sklearn.metrics.recall_score(labels, predicted, zero_division=0)
        point_precision = sklearn.metrics.precision_score(labels, predicted, zero_division=0)
        axis.plot([point_recall], [point_precision], "o", color="C3",
                  label=f"threshold {threshold:.2f}")
    axis.set_xlabel("recall (share of birds found)")
    axis.set_ylabel("precision (share of 'bird' answers right)")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    axis.set_title(title)
    return figure


def threshold_tradeoff(rows, threshold=None, title="moving the threshold", size=4.5):
    """Precision, recall and F1 against the threshold, from `thresholds.sweep` rows (lesson 5).

    Args:
        rows: dicts with "threshold", "precision", "recall" and "f1".
        threshold: draw a vertical line at this threshold, or None.
        title: the figure title.
        size: figure height in inches.

    Returns:
        The matplotlib Figure, one Axes with three lines.
    """
    if not rows:
        raise ValueError("threshold_tradeoff got no rows: pass thresholds.sweep(labels, scores)")
    figure, axis = plt.subplots(figsize=(size * 1.4, size), layout="constrained")
    cut = [row["threshold"] for row in rows]
    for name in ("precision", "recall", "f1"):
        axis.plot(cut, [row[name] for row in rows], "o-", markersize=3, label=name)
    if threshold is not None:
        axis.axvline(threshold, color="gray", linestyle="--", label=f"threshold {threshold:.2f}")
    axis.set_xlabel("threshold on P(bird)")
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    axis.set_title(title)
    return figure
