"""Checks for lesson 2's exercises (fully connected vs convolutional); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, checker, returned


@checker("2.1")
def weight_counts(dense_weights, conv_weights):
    import keras

    answered(dense_weights, "`dense_weights`: a function of (height, width, channels, units)")
    answered(conv_weights, "`conv_weights`: a function of (kernel_size, channels, filters)")
    for height, width, channels, units in [(8, 8, 1, 32), (28, 28, 1, 100), (96, 96, 3, 100), (7, 5, 4, 3)]:
        dense = keras.Sequential([keras.Input((height, width, channels)), keras.layers.Flatten(),
                                  keras.layers.Dense(units)])
        got = returned(dense_weights(height, width, channels, units), "dense_weights")
        if got != dense.count_params():
            return (f"dense_weights({height}, {width}, {channels}, {units}) gives {got}; "
                    f"Keras counts {dense.count_params():,} (did you count the biases?).")
    for kernel_size, channels, filters in [(3, 1, 32), (3, 3, 64), (5, 6, 16), (1, 8, 4)]:
        conv = keras.layers.Conv2D(filters, kernel_size)
        conv.build((None, 32, 32, channels))
        got = returned(conv_weights(kernel_size, channels, filters), "conv_weights")
        if got != conv.count_params():
            return (f"conv_weights({kernel_size}, {channels}, {filters}) gives {got}; "
                    f"Keras counts {conv.count_params():,}.")
    return None


@checker("2.2")
def precision_recall_at(precision, recall, labels, probabilities, threshold=0.3):
    import sklearn.metrics

    precision = float(answered(precision, "`precision_03`: the 8 detector's precision at threshold 0.3"))
    recall = float(answered(recall, "`recall_03`: its recall at threshold 0.3"))
    said = [probabilities > threshold, probabilities >= threshold]
    expected = [(sklearn.metrics.precision_score(labels, s, zero_division=0),
                 sklearn.metrics.recall_score(labels, s, zero_division=0)) for s in said]
    if any(np.isclose(precision, p) for p, _ in expected) and any(np.isclose(recall, r) for _, r in expected):
        return None
    if any(np.isclose(precision, r) and np.isclose(recall, p) for p, r in expected):
        return "precision and recall are swapped."
    if not any(np.isclose(precision, p) for p, _ in expected):
        return (f"precision {precision:.3f} is not right: of the digits called an 8 at threshold {threshold}, "
                "what share (from 0 to 1) are 8s?")
    return (f"recall {recall:.3f} is not right: of the 8s, what share (from 0 to 1) are called an 8 at threshold "
            f"{threshold}?")


@checker("2.3")
def shift_digits(function, images):
    import scipy.ndimage

    answered(function, "`shift`: a function of (image, rows, columns)")
    for image in images[:20]:
        for rows, columns in [(0, 0), (1, 0), (0, -2), (3, 2), (-2, -3)]:
            expected = scipy.ndimage.shift(image.astype(float), (rows, columns), order=0, cval=0)
            got = np.asarray(returned(function(image, rows, columns), "shift"), dtype=float)
            if got.shape != image.shape:
                return f"shift(...) returns shape {got.shape}; it must keep the image's shape {image.shape}."
            if not np.allclose(got, expected):
                if np.allclose(got, np.roll(image, (rows, columns), axis=(0, 1))):
                    return "pixels pushed out on one side come back on the other (that is np.roll): fill with 0."
                if np.allclose(got, scipy.ndimage.shift(image.astype(float), (-rows, -columns), order=0, cval=0)):
                    return "it moves the digit the wrong way: positive rows move it down, positive columns right."
                return (f"shift(image, {rows}, {columns}) does not move the digit {rows} rows down and "
                        f"{columns} columns right.")
    return None
