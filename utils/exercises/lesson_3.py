"""Checks for lesson 3's exercises (a CNN from scratch); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, checker, returned


@checker("3.1")
def stopping_epoch(function):
    import keras

    answered(function, "`stopped_after`: a function of (val_losses, patience)")
    rng = np.random.default_rng(0)
    cases = [([0.9, 0.8, 0.7, 0.6], 2), ([0.9, 0.8, 0.85, 0.86, 0.87, 0.5], 3), ([0.5, 0.5, 0.5, 0.5], 2),
             ([0.7, 0.8, 0.6, 0.65, 0.66], 2),
             *((list(rng.uniform(0.3, 0.9, 12)), int(rng.integers(1, 5))) for _ in range(20))]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    for losses, patience in cases:
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)
        stopper.set_model(model)
        model.stop_training = False
        stopper.on_train_begin()
        expected = len(losses)
        for epoch, loss in enumerate(losses):
            stopper.on_epoch_end(epoch, {"val_loss": loss})
            if model.stop_training:
                expected = epoch + 1
                break
        got = returned(function(list(losses), patience), "stopped_after")
        if got != expected:
            shown = ", ".join(f"{loss:.2f}" for loss in losses)
            return (f"with validation losses [{shown}] and patience {patience}, yours stops after epoch {got}; "
                    f"Keras' EarlyStopping stops after epoch {expected}.")
    return None


@checker("3.2")
def stronger_augmentation(augment, images):
    import keras

    augment = answered(augment, "`stronger_augment`: a keras.Sequential of augmentation layers")
    def inside(model):  # the layers, and those of any Sequential nested in it (such as `augment` itself)
        for layer in getattr(model, "layers", []):
            yield layer
            yield from inside(layer)

    if not isinstance(augment, keras.layers.Layer):
        return (f"its type is {type(augment).__name__}: put the layers in a keras.Sequential([...]), "
                "which photos go through.")
    kinds = {type(layer).__name__: layer for layer in [augment, *inside(augment)]}
    for name, arguments, value in [("RandomZoom", ("height_factor", "width_factor"), 0.2),
                                   ("RandomRotation", ("factor",), 0.05)]:
        if name not in kinds:
            return f"there is no {name} layer in it."
        for argument in arguments:  # a zoom's width_factor of None is its height_factor
            factor = getattr(kinds[name], argument)
            if factor is not None and not np.isclose(np.max(np.abs(factor)), value):
                return f"its {name} has {argument} {factor}; the exercise asks for {value}."
    for name in ("RandomFlip", "RandomTranslation"):
        if name not in kinds:
            return f"the lesson's {name} is gone: keep the layers of `augment` and add the new ones."
    if kinds["RandomFlip"].mode != "horizontal":
        return (f"its RandomFlip is {kinds['RandomFlip'].mode!r}; the lesson's mirrors left to right only "
                "(\"horizontal\"): a cat upside down is not a photo the network will meet.")
    shift = kinds["RandomTranslation"]
    if not all(np.isclose(np.max(np.abs(factor)), 0.08) for factor in (shift.height_factor, shift.width_factor)):
        return "its RandomTranslation is not the lesson's (up to 8% each way): keep the layers of `augment`."
    images = np.asarray(images, dtype="float32")
    if not np.allclose(keras.ops.convert_to_numpy(augment(images, training=False)), images):
        return "with training=False it changes the photos: augmentation must act only while training."
    if np.allclose(keras.ops.convert_to_numpy(augment(images, training=True)), images):
        return "with training=True it leaves the photos as they are."
    return None


@checker("3.3")
def flip_averaged(function, model, images):
    import keras

    answered(function, "`predict_with_flip`: a function of (model, images)")
    images = np.asarray(images, dtype="float32")
    keras.utils.set_random_seed(0)  # and a small network that surely tells a photo from its mirror image
    lopsided = keras.Sequential([keras.Input(images.shape[1:]), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 5, strides=3), keras.layers.Flatten(),
                                 keras.layers.Dense(2, activation="softmax")])
    for network in (lopsided, model):  # the lopsided one first: the lesson's may barely tell a photo from its mirror
        plain = network.predict(images, verbose=0)
        got = np.asarray(returned(function(network, images), "predict_with_flip"), dtype=float)
        if got.shape != plain.shape:
            return f"it returns shape {got.shape}; the model's probabilities have shape {plain.shape}."
        if np.allclose(got, (plain + network.predict(images[:, :, ::-1], verbose=0)) / 2, rtol=1e-4, atol=1e-6):
            continue
        if np.allclose(got, (plain + network.predict(images[:, ::-1], verbose=0)) / 2, rtol=1e-4, atol=1e-6):
            return "that mirror is upside down: flip each photo left to right (its width axis)."
        if np.allclose(got, plain, rtol=1e-4, atol=1e-6):
            return "it gives the plain prediction: the mirrored photos are not in it."
        return "it is not the average of the probabilities for each photo and its mirror image."
    return None
