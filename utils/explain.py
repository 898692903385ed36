"""What a trained network looks at: its kernels, its feature maps and Grad-CAM.

Introduced in lesson 3 (`03_cnn_from_scratch`, "What did it learn?"), which
writes Grad-CAM out in plain Keras first; lesson 4 and the error panels of
`evaluate.show_panel` use this module. It works on any model that is a chain
of layers: Sequential models, Functional ones without branches, and chains
that hold other chains (lesson 4's VGG16 base followed by its head).
"""

import contextlib

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib import cm, colors

POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def layer_chain(model):
    """The model's layers in order, nested models opened up, input layers left out."""
    chain = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            chain += layer_chain(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            chain.append(layer)
    return chain


def _run(model, images, tape=None):
    """Runs `images` through the chain in inference mode.

    Returns `(outputs, scores)`: each layer's output by layer name, and the
    class scores before the last layer's softmax or sigmoid (Grad-CAM's
    "logits"). With a `tape`, every 4-D output is watched, so gradients can
    be taken with respect to it, even in frozen layers.
    """
    batch = np.asarray(images, dtype="float32")
    x, chain, outputs = tf.convert_to_tensor(batch), layer_chain(model), {}
    last = chain[-1]
    try:
        for layer in chain[:-1]:
            x = layer(x, training=False)
            if tape is not None and len(x.shape) == 4:
                tape.watch(x)
            outputs[layer.name] = x
        if isinstance(last, keras.layers.Dense):
            scores = tf.matmul(x, last.kernel) + (0 if last.bias is None else last.bias)
            outputs[last.name] = last.activation(scores)
        else:
            scores = x if isinstance(last, (keras.layers.Activation, keras.layers.Softmax)) else last(x)
            outputs[last.name] = last(x)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{model.name} is not a chain of layers: {error}") from error
    if scores.shape[-1] == 1:  # one sigmoid unit: the score of class 0 is minus that of class 1
        scores = tf.concat([-scores, scores], axis=-1)
    with tape.stop_recording() if tape is not None else contextlib.nullcontext():  # a check, not for gradients
        expected = keras.ops.convert_to_numpy(model(batch, training=False))
    if not np.allclose(keras.ops.convert_to_numpy(outputs[last.name]), expected, atol=1e-4, rtol=1e-3):
        raise ValueError(f"{model.name} is not a chain of layers (it has branches or shared layers): "
                         "explain needs each layer to feed the next, as in a Sequential model")
    return outputs, scores


def last_conv_layer(model, outputs=None):
    """The name of the last layer with 4-D output that is not a pooling layer.

    That is Grad-CAM's usual choice: the last feature maps before the network
    pools them away (for lesson 3's networks, the last convolution block's ReLU).
    """
    if outputs is None:
        outputs, _ = _run(model, np.zeros((1, *model.input_shape[1:]), "float32"))
    chain = {layer.name: layer for layer in layer_chain(model)}
    names = [name for name, output in outputs.items()
             if len(output.shape) == 4 and not isinstance(chain[name], POOLING)]
    if not names:
        raise ValueError(f"{model.name} has no layer with 4-D output (height, width, channels): "
                         "Grad-CAM needs a convolutional network")
    return names[-1]


def feature_maps(model, images, layer_names):
    """The outputs of the named layers for a batch of images.

    Returns:
        {layer name: array (images, height, width, channels)}, in the order asked.
    """
    outputs, _ = _run(model, images)
    missing = [name for name in layer_names if name not in outputs]
    if missing:
        raise ValueError(f"no layer called {missing} in {model.name}; its layers: {list(outputs)}")
    return {name: keras.ops.convert_to_numpy(outputs[name]) for name in layer_names}


def grad_cam(model, images, class_index=None, layer=None):
    """Grad-CAM heat maps (Selvaraju et al., 2017) for a batch of images.

    For each image: the gradient of the class score (before softmax) with
    respect to the layer's feature maps, averaged over height and width to
    one weight per channel; the weighted sum of the maps; ReLU; divided by
    its maximum.

    Args:
        model: a classifier that is a chain of layers, ending in Dense (softmax
            or one sigmoid unit), Softmax or Activation.
        images: batch of images as the model takes them.
        class_index: the class to explain, an int or one per image; None: the
            predicted class of each image.
        layer: name of the layer whose maps are weighted; None: `last_conv_layer`.

    Returns:
        Array (images, height, width) with values in 0..1 at the layer's resolution.
    """
    with tf.GradientTape() as tape:
        outputs, scores = _run(model, images, tape=tape)
        layer = layer or last_conv_layer(model, outputs)
        if layer not in outputs or len(outputs[layer].shape) != 4:
            raise ValueError(f"{layer!r} is not a layer of {model.name} with 4-D output; "
                             f"try {last_conv_layer(model, outputs)!r}")
        chosen = tf.argmax(scores, axis=-1) if class_index is None else \
            tf.broadcast_to(tf.constant(class_index, tf.int64), scores.shape[:1])
        score = tf.reduce_sum(tf.gather(scores, chosen, axis=1, batch_dims=1))
    maps = outputs[layer]
    weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2))   # one weight per channel
    heat = tf.nn.relu(tf.einsum("bhwc,bc->bhw", maps, weights)).numpy()
    peak = heat.max(axis=(1, 2), keepdims=True)
    return np.divide(heat, peak, out=np.zeros_like(heat), where=peak > 0)


def overlay(photo, heatmap, alpha=0.45):
    """The heat map in the "jet" colours, resized to the photo and blended over it.

    Returns:
        Float RGB array (photo height, width, 3) in 0..1.
    """
    photo = np.asarray(photo, dtype="float32")
    photo = (photo / 255 if photo.max() > 1 else photo)[..., :3]
    heat = tf.image.resize(np.asarray(heatmap, "float32")[..., None], photo.shape[:2]).numpy()[..., 0]
    return np.clip((1 - alpha) * photo + alpha * cm.jet(np.clip(heat, 0, 1))[..., :3], 0, 1)


def show_grad_cam(photos, heatmaps, titles=None, suptitle=None, size=2.5):
    """Each photo above its Grad-CAM overlays, with one colour bar for the heat.

    Args:
        photos: the photos, any size (each map is enlarged to its photo).
        heatmaps: array (photos, height, width) from `grad_cam`, or
            {row label: such an array} for one row of overlays per model.
        titles: one title per photo, or None.

    Returns:
        The matplotlib Figure.
    """
    rows = heatmaps if isinstance(heatmaps, dict) else {"Grad-CAM": heatmaps}
    count = len(photos)
    figure, axes = plt.subplots(1 + len(rows), count, figsize=(size * count + 0.8, size * (1 + len(rows)) + 0.3),
                                squeeze=False, layout="constrained")
    for index, photo in enumerate(photos):
        axes[0, index].imshow(np.asarray(photo).astype("uint8"))
        if titles is not None:
            axes[0, index].set_title(str(titles[index]), fontsize=10)
        for row, maps in enumerate(rows.values(), start=1):
            axes[row, index].imshow(overlay(photo, maps[index]))
    for axis in axes.flat:
        axis.set(xticks=[], yticks=[])
    for row, label in enumerate(rows, start=1):
        axes[row, 0].set_ylabel(label)
    figure.colorbar(cm.ScalarMappable(colors.Normalize(0, 1), "jet"), ax=axes[1:, :].ravel().tolist(), shrink=0.9,
                    label="share of the strongest evidence")
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def show_kernels(kernels, hand_made=None, columns=16, size=0.7):
    """First-layer kernels as small pictures, one tile per filter.

    Args:
        kernels: array (height, width, input channels, filters), e.g.
            `conv_layer.kernel`. Colour kernels (3 input channels) are shown in
            colour, others in grey; each is scaled to its own largest weight,
            so that mid-grey is zero.
        hand_made: optional {name: 2-D kernel}, shown in grey in a last row.
        columns: tiles per row.

    Returns:
        The matplotlib Figure: one image per filter, then one per hand-made kernel.
    """
    kernels = np.asarray(kernels.numpy() if hasattr(kernels, "numpy") else kernels)
    tiles = [kernels[..., index] for index in range(kernels.shape[-1])]
    tiles = [tile if tile.shape[-1] == 3 else tile.mean(axis=-1) for tile in tiles]
    extra = list((hand_made or {}).items())
    rows = -(-len(tiles) // columns) + (1 if extra else 0)
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows * 1.25), squeeze=False,
                                 layout="constrained")  # room for the hand-made kernels' names
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, tile in zip(axes.flat, tiles):
        axis.imshow(tile / (2 * (np.abs(tile).max() or 1)) + 0.5, cmap="gray", vmin=0, vmax=1)  # grey is zero
    for axis, (name, kernel) in zip(axes[-1, ::2], extra):  # every other column: room for the names
        limit = np.abs(kernel).max() or 1
        axis.imshow(kernel, cmap="gray", vmin=-limit, vmax=limit)  # grey is zero, as in the tiles above
        axis.set_title(name.replace(", ", "\n").replace(" ", "\n", 1), fontsize=7)
    for axis in axes.flat:
        if axis.get_images():  # a thin frame, so that an all-white kernel (a box blur) is seen on the page
            axis.set_axis_on()
            axis.set_xticks([])
            axis.set_yticks([])
    figure.suptitle(f"{len(tiles)} learned kernels" + (", then hand-made ones" if extra else ""))
    return figure


def show_feature_maps(maps, channels=6, size=1.6):
    """One row per layer: the first `channels` feature maps of the first image.

    Args:
        maps: {layer name: array (images, height, width, channels)}, as
            `feature_maps` returns.

    Returns:
        The matplotlib Figure.
    """
    figure, axes = plt.subplots(len(maps), channels, figsize=(size * channels, size * len(maps)),
                                squeeze=False, layout="constrained")
    for row, (name, stack) in zip(axes, maps.items()):
        for channel, axis in enumerate(row):
            axis.set(xticks=[], yticks=[])
            if channel < stack.shape[-1]:
                axis.imshow(stack[0, :, :, channel], cmap="viridis")
        row[0].set_ylabel(f"{name}\n{stack.shape[1]}x{stack.shape[2]}x{stack.shape[3]}", fontsize=8)
    figure.suptitle(f"the first {channels} channels after each layer (height x width x channels)")
    return figure
