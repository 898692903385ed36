"""utils.plots: the figures have the panels and titles they promise."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sklearn.metrics

from utils import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_show_images_makes_one_titled_axes_per_image():
    images = [np.full((8, 8), value, dtype=np.uint8) for value in range(5)]
    figure = plots.show_images(images, titles=[f"image {i}" for i in range(5)], rows=2)
    assert len(figure.axes) == 5  # the sixth grid cell is removed
    assert [axis.get_title() for axis in figure.axes] == [f"image {i}" for i in range(5)]
    assert figure.axes[0].get_images()[0].get_array().shape == (8, 8)


def test_show_images_accepts_colour_single_channel_and_negative_floats():
    images = [np.zeros((6, 6, 3), np.uint8), np.ones((6, 6, 1)), np.linspace(-5, 5, 36).reshape(6, 6)]
    figure = plots.show_images(images, colorbar=True)
    image_axes = [axis for axis in figure.axes if axis.get_images()]
    assert len(image_axes) == 3
    assert image_axes[1].get_images()[0].get_array().shape == (6, 6)  # channel of 1 squeezed


def test_show_images_rejects_mismatched_titles_and_no_images():
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        plots.show_images([np.zeros((2, 2))] * 2, titles=["one"])
    with pytest.raises(ValueError, match="no images"):
        plots.show_images([])


def test_one_row_shows_original_and_filtered_side_by_side():
    figure = plots.show_images([np.zeros((10, 10)), np.ones((8, 8))], titles=["original", "blurred"], rows=1, size=4)
    assert [axis.get_title() for axis in figure.axes] == ["original", "blurred"]
    first, second = (axis.get_position() for axis in figure.axes)
    assert first.x0 < second.x0 and abs(first.y0 - second.y0) < 1e-6


def test_matrix_writes_every_value():
    figure = plots.matrix(np.arange(6).reshape(2, 3), title="numbers")
    axis = figure.axes[0]
    assert axis.get_title() == "numbers"
    assert sorted(text.get_text() for text in axis.texts) == ["0", "1", "2", "3", "4", "5"]
    # each value on its own cell: x is the column, y the row, as imshow draws the array
    assert {text.get_position(): text.get_text() for text in axis.texts} == {
        (column, row): str(row * 3 + column) for row in range(2) for column in range(3)}


def test_history_has_a_panel_per_metric_with_epochs_on_x():
    history = {"loss": [0.9, 0.6, 0.5], "val_loss": [1.0, 0.7, 0.65],
               "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.65, 0.7]}
    figure = plots.history(history)
    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]
    assert all(axis.get_xlabel() == "epoch" for axis in figure.axes)
    assert [len(axis.get_lines()) for axis in figure.axes] == [2, 2]
    np.testing.assert_array_equal(figure.axes[1].get_lines()[1].get_ydata(), [0.5, 0.65, 0.7])
    with pytest.raises(ValueError, match="no \\['auc'\\]"):
        plots.history(history, metrics=("auc",))


def test_history_labels_training_and_validation_only_where_both_are_drawn():
    figure = plots.history({"loss": [0.9, 0.6], "val_loss": [1.0, 0.7], "learning_rate": [1e-3, 5e-4]},
                           metrics=("loss", "learning_rate"))
    loss, rate = figure.axes
    assert [text.get_text() for text in loss.get_legend().get_texts()] == ["training", "validation"]
    assert rate.get_legend() is None and len(rate.get_lines()) == 1  # no "training" legend on the schedule


def test_history_of_one_epoch_says_why_there_is_no_curve_and_ticks_whole_epochs():
    figure = plots.history({"loss": [0.7], "val_loss": [0.6], "accuracy": [0.5], "val_accuracy": [0.55]})
    assert [axis.get_title() for axis in figure.axes] == ["loss (one epoch: a curve needs two)",
                                                          "accuracy (one epoch: a curve needs two)"]
    figure.canvas.draw()
    assert all(float(tick).is_integer() for axis in figure.axes for tick in axis.get_xticks())


def test_confusion_matrix_shows_the_counts_true_down_predicted_across_every_class():
    # not symmetric, so swapping true and predicted shows; "birds" is in neither, so it must still get its row
    y_true, y_pred = [0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 2, 2]
    names = ["cats", "dogs", "foxes", "birds"]
    figure = plots.confusion_matrix(y_true, y_pred, names)
    axis = figure.axes[0]
    expected = np.array([[1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])  # rows true, columns predicted
    np.testing.assert_array_equal(expected, sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(4)))
    shown = {(round(x), round(y)): text.get_text() for text in axis.texts for x, y in [text.get_position()]}
    assert shown == {(column, row): str(expected[row, column]) for row in range(4) for column in range(4)}
    assert [label.get_text() for label in axis.get_xticklabels()] == names
    assert [label.get_text() for label in axis.get_yticklabels()] == names
    assert axis.get_ylabel() == "True label" and axis.get_xlabel() == "Predicted label"


def test_wide_images_get_a_figure_about_as_flat_as_they_are():
    wide = plots.show_images([np.zeros((20, 40)), np.ones((20, 40))], rows=1, size=4, colorbar=True)
    square = plots.show_images([np.zeros((40, 40))], rows=1, size=4)
    assert wide.get_figheight() == pytest.approx(4 * 0.5 + 0.3) and square.get_figheight() == pytest.approx(4.3)


def test_bar_chart_draws_grouped_bars_with_their_values_written_on_top():
    values = {"FC": [0.96, 0.09], "CNN": [0.97, 0.95]}
    figure = plots.bar_chart(values, series=["centered", "shifted"], title="accuracy",
                             ylim=(0, 1), reference=0.1, reference_label="chance")
    axis = figure.axes[0]
    assert axis.get_title() == "accuracy" and axis.get_ylim() == pytest.approx((0, 1.1))  # room above 100%
    assert axis.get_yticks().max() == pytest.approx(1)
    heights = [patch.get_height() for patch in axis.patches]
    assert heights == pytest.approx([0.96, 0.97, 0.09, 0.95])  # series by series
    assert [text.get_text() for text in axis.texts] == ["96%", "97%", "9%", "95%"]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["FC", "CNN"]
    (legend,) = figure.legends  # under the axes, clear of the bars
    legend = [text.get_text() for text in legend.get_texts()]
    assert sorted(legend) == ["centered", "chance", "shifted"]
    assert [line.get_ydata()[0] for line in axis.get_lines()] == [0.1]
    centered_fc, centered_cnn, shifted_fc, _ = axis.patches
    assert centered_fc.get_x() < shifted_fc.get_x() < centered_cnn.get_x()


def test_without_ylim_the_tallest_bars_value_stays_inside_the_frame_and_the_bars_start_at_0():
    figure = plots.bar_chart({"Keras": 1.19, "float32": 0.38, "int8": 0.10}, fmt="{:.2f}", title="file size")
    figure.canvas.draw()
    renderer, axis = figure.canvas.get_renderer(), figure.axes[0]
    assert axis.get_ylim()[0] == 0
    assert axis.texts[0].get_window_extent(renderer).y1 < axis.get_window_extent(renderer).y1


def test_a_value_near_the_reference_line_is_drawn_over_it_on_a_white_patch():
    figure = plots.bar_chart({"route 1": 0.45, "route 2": 0.62}, ylim=(0, 1), reference=0.5, reference_label="chance")
    axis = figure.axes[0]
    (line,) = axis.get_lines()
    assert all(text.get_zorder() > line.get_zorder() for text in axis.texts)
    assert all(text.get_bbox_patch().get_facecolor()[:3] == (1, 1, 1) for text in axis.texts)


def test_bar_chart_with_one_number_per_label_has_no_legend():
    figure = plots.bar_chart({"a": 3, "b": 1200}, fmt="{:,.0f}")
    axis = figure.axes[0]
    assert [patch.get_height() for patch in axis.patches] == [3, 1200]
    assert [text.get_text() for text in axis.texts] == ["3", "1,200"]
    assert axis.get_legend() is None and not figure.legends


def test_a_value_written_on_a_bar_that_reaches_the_top_stays_inside_the_frame_clear_of_the_title():
    figure = plots.bar_chart({"cub": 1.0, "cifar": 0.62}, title="birds found, by source", ylim=(0, 1))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    title = figure.axes[0].title.get_window_extent(renderer)
    (top_value, _) = figure.axes[0].texts
    assert top_value.get_text() == "100%"
    assert top_value.get_window_extent(renderer).y1 < figure.axes[0].get_window_extent(renderer).y1
    gap = (title.y0 - top_value.get_window_extent(renderer).y1) * 72 / figure.dpi
    assert gap > 3  # points: a clear space, not touching


def test_bar_chart_rejects_missing_or_mismatched_values():
    with pytest.raises(ValueError, match="no values"):
        plots.bar_chart({})
    with pytest.raises(ValueError, match="'CNN' has 1 values but there are 2 series"):
        plots.bar_chart({"FC": [1, 2], "CNN": [1]}, series=["centered", "shifted"])
