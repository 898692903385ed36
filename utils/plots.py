"""Figures for the lessons (lesson 1 onwards): image grids, curves and evaluation charts, each returned as a Figure."""

import math

import matplotlib.pyplot as plt
import numpy as np


def _as_displayable(image):
    """Squeezes a trailing channel of 1 and rescales float images outside 0–1."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype.kind == "f" and image.ndim == 3 and (image.min() < 0 or image.max() > 1):
        image = plt.Normalize()(image)  # to 0–1 (a constant image becomes 0)
    return image


def show_images(images, titles=None, rows=None, size=2.5, suptitle=None, colorbar=False):
    """Shows images in a grid (lesson 1 onwards).

    Args:
        images: arrays, (height, width) for grayscale or (height, width, 3) for colour; uint8 or float.
        rows: number of rows (default: as square a grid as fits).
        size: inches per image.
        colorbar: a colour scale next to each grayscale image (for feature maps with negatives).
    """
    images = list(images)
    if not images:
        raise ValueError("show_images got no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    rows = rows or max(1, round(math.sqrt(len(images))))
    columns = math.ceil(len(images) / rows)
    tallest = max(min(1, np.shape(image)[0] / np.shape(image)[1]) for image in images)  # wide images: less height
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, (size * tallest + 0.3) * rows),
                                squeeze=False, layout="constrained")
    for axis in axes.flat[len(images):]:
        axis.remove()
    for index, axis in enumerate(axes.flat[:len(images)]):
        picture = axis.imshow(_as_displayable(images[index]), cmap="gray")
        if colorbar and picture.get_array().ndim == 2:
            figure.colorbar(picture, ax=axis, shrink=0.8)
        axis.set(xticks=[], yticks=[])
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=10)
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def matrix(values, title=None, size=0.45):
    """Shows a small 2-D array as whole numbers on a gray image, `size` inches per cell (lesson 1)."""
    values = np.asarray(values)
    height, width = values.shape
    figure, axis = plt.subplots(figsize=(max(2, size * width), max(2, size * height)), layout="constrained")
    axis.imshow(values, cmap="gray")
    middle = (values.max() + values.min()) / 2
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=7,
                  color="black" if value > middle else "white")
    axis.set(xticks=[], yticks=[], title=title or "")
    return figure


def history(history, metrics=("loss", "accuracy")):
    """Training and validation curves against the epoch, one panel per metric (lesson 3).

    Args:
        history: a dict of lists per metric (`TrainingRun.history`) or a Keras History.
        metrics: the metrics to draw; each panel shows `name` and, when there is one, `val_name`.
    """
    history = getattr(history, "history", history)
    missing = [name for name in metrics if name not in history]
    if missing:
        raise ValueError(f"the history has no {missing}; it has {sorted(history)}")
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.375),
                                squeeze=False, layout="constrained")
    for axis, name in zip(axes.flat, metrics):
        epochs = np.arange(1, len(history[name]) + 1)
        validated = f"val_{name}" in history  # else one curve (the learning rate), which needs no legend
        axis.plot(epochs, history[name], "o-", label="training" if validated else name)
        if validated:
            axis.plot(epochs, history[f"val_{name}"], "o-", label="validation")
        one = len(epochs) == 1  # sample mode may train one epoch: say why there is no curve
        axis.set(xlabel="epoch", ylabel=name, title=f"{name} (one epoch: a curve needs two)" if one else name)
        axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True, min_n_ticks=1))  # epoch 1, 2, ..., never 1.25
        axis.grid(alpha=0.3)
        if validated:
            axis.legend()
    return figure


def confusion_matrix(y_true, y_pred, class_names, title="confusion matrix"):
    """A confusion matrix of counts from class indices, true down, predicted across, every class shown (lesson 3)."""
    import sklearn.metrics

    figure, axis = plt.subplots(figsize=(4, 4), layout="constrained")
    sklearn.metrics.ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=class_names,
        ax=axis, colorbar=False, cmap="Blues")
    axis.set_title(title)
    return figure


def bar_chart(values, series=None, title=None, ylabel=None, ylim=None, fmt="{:.0%}",
              reference=None, reference_label=None):
    """Shows numbers as bars, each written on top of its bar (lesson 2).

    Args:
        values: a dict from bar label to a number, or to one number per entry of `series` (grouped bars).
        series: names of the bars within each group (shown in a legend), or None.
        ylim: (bottom, top) of the vertical axis, or None to fit the bars.
        fmt: how the number on each bar is written.
        reference: a dashed horizontal line at this value (chance level, a baseline), or None.
        reference_label: the line's name in the legend.

    Returns:
        The matplotlib Figure; its Axes' patches are all groups' first bars, then all second bars, and so on.
    """
    if not values:
        raise ValueError("bar_chart got no values to show")
    rows = {label: np.atleast_1d(np.asarray(value, dtype=float)) for label, value in values.items()}
    names = list(series) if series is not None else [None]
    for label, row in rows.items():
        if row.ndim != 1 or len(row) != len(names):
            raise ValueError(f"{label!r} has {row.size} values but there are {len(names)} "
                             f"series {names}: give one number per series")
    heights = np.stack(list(rows.values()))
    width = 0.8 / len(names)
    positions = np.arange(len(rows))
    figure, axis = plt.subplots(figsize=(7, 3.5), layout="constrained")
    for index, name in enumerate(names):
        offsets = positions + (index - (len(names) - 1) / 2) * width
        bars = axis.bar(offsets, heights[:, index], width=width * 0.95, label=name)
        axis.bar_label(bars, fmt=fmt, fontsize=9, padding=2,  # legible over a reference line too
                       bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5}, zorder=3)
    if reference is not None:
        axis.axhline(reference, color="gray", linestyle="--", linewidth=1, label=reference_label)
    axis.set_xticks(positions, [str(label) for label in rows])
    if ylim is not None:  # a tenth more above it, for the value written on a bar that reaches the top
        axis.set_ylim(ylim[0], ylim[1] + (ylim[1] - ylim[0]) / 10)
        axis.set_yticks([tick for tick in axis.get_yticks() if ylim[0] <= tick <= ylim[1]])
    else:
        axis.margins(y=0.1)  # the same room above the tallest bar (the bars keep the bottom at 0)
    axis.set_ylabel(ylabel or "")
    axis.set_title(title or "")
    if series is not None or reference_label:
        figure.legend(fontsize=9, loc="outside lower center", ncol=3, frameon=False)  # under the axes: clear of bars
    return figure

