"""Which network, image size and augmentation should lesson 3's "improved" network use?

Measured the way the lesson trains, on real photos: `--photos` of them (half
cats, half dogs) are organized by `data.organize` (70% train, 15% valid, 15%
test) and read by `pipeline.image_dataset`; the network trains for
`--minutes` with AdamW and `schedules.TimeBudgetSchedule`. Besides the
lesson's small test set, every labelled photo of `--data` that was not picked
is a large held-out set ("held_out"), so that candidates a point or two apart
can be told apart. Each run appends one record to
`benchmarks/results/cnn_candidates.json`:

    .venv/bin/python benchmarks/cnn_candidates.py --data ../shared/data/dogscats-dev --network plain \\
        --size 64 --augment light --minutes 6
    .venv/bin/python benchmarks/cnn_candidates.py --data ../shared/data/dogscats-dev --speed --network xception

Networks: "plain" (lesson 3's improved network: conv, batch norm, ReLU and
max pooling blocks, `--widths` ("64x2": two convolutions in that block), global average pooling; `--no-batchnorm`,
`--head flatten` and `--optimizer rmsprop` each take one of its modern
changes back to 2017, to measure what that change brings), "xception" (the
separable-convolution, residual network this lesson used before), and
"baseline" (the 2017 network). Augmentations: "none", "flip", "light" (flip
and shifts of up to 8%), "standard" (flip, rotation, zoom and shifts).

Also: `--epochs N` trains a fixed number of epochs instead of `--minutes`
(the accuracy does not depend on how busy the machine is), and
`--label-smoothing`, `--mixup ALPHA`, `--cutmix`, `--weight-decay`, `--optimizer sgd-schedule`,
`--final-size` (progressive resizing) and `--valid-fraction`/`--test-fraction`
(the split). The test and held-out
accuracies are also given with each photo's probabilities averaged with its
mirror image's ("flip_averaged").
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RMSPROP_RATE = 1e-3  # the 2017 baseline's optimizer, at its fixed rate (`--optimizer rmsprop`)
AUGMENTATIONS = ("none", "flip", "light", "standard")


def augmentation(name):
    import keras

    layers = {"none": [], "flip": [keras.layers.RandomFlip("horizontal")],
              "light": [keras.layers.RandomFlip("horizontal"),
                        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect")],
              "standard": [keras.layers.RandomFlip("horizontal"),
                           keras.layers.RandomRotation(0.05, fill_mode="reflect"),
                           keras.layers.RandomZoom(0.2, fill_mode="reflect"),
                           keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect")]}[name]
    return keras.Sequential(layers) if layers else None


def network(name, size, widths, dropout_rate, stem=0, batchnorm=True, head="gap"):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    if stem:  # a strided convolution first: the blocks after it cost what they cost at half the size
        x = keras.layers.Conv2D(stem, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.Activation("relu")(keras.layers.BatchNormalization(momentum=0.9)(x))
    if name == "baseline":
        for filters in (32, 32, 64):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(x))
        x = keras.layers.Dropout(0.5)(x)
    elif name == "plain":
        for width in widths:  # "64" is one convolution of 64 filters before the pooling, "64x2" two
            filters, _, convolutions = str(width).partition("x")
            for _ in range(int(convolutions or 1)):
                x = keras.layers.Conv2D(int(filters), 3, padding="same", use_bias=not batchnorm)(x)
                if batchnorm:
                    x = keras.layers.BatchNormalization(momentum=0.9)(x)
                x = keras.layers.Activation("relu")(x)
            x = keras.layers.MaxPooling2D(2)(x)
        if head == "gap":
            x = keras.layers.Dropout(dropout_rate)(keras.layers.GlobalAveragePooling2D()(x))
        else:  # the 2017 head: flatten the last maps into a dense layer
            x = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(x))
            x = keras.layers.Dropout(0.5)(x)
    elif name == "xception":  # lesson 3's "improved" network until 2026-12
        x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.Activation("relu")(keras.layers.BatchNormalization(momentum=0.9)(x))
        for filters in (64, 128, 256):
            residual = x
            for _ in range(2):
                x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
                x = keras.layers.Activation("relu")(keras.layers.BatchNormalization(momentum=0.9)(x))
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
            residual = keras.layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(residual)
            x = keras.layers.add([x, residual])
        x = keras.layers.Dropout(dropout_rate)(keras.layers.GlobalAveragePooling2D()(x))
    else:
        raise ValueError(f"unknown network {name!r}")
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def prepare(data, photos, seed, work, **fractions):
    """Organizes the picked photos; returns (layout, folder of class folders holding every other photo)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_pets
    from utils import data as kit_data, layouts

    chosen, _ = real_pets.pick_photos(data, photos, seed)
    flat = real_pets.flat_copy(chosen, work / "photos")
    layout = kit_data.organize(flat, work / "layouts", seed=seed, quiet=True, **fractions)
    found = layouts.find(data)
    picked = {path for paths in chosen.values() for path in paths}
    held_out = work / "held_out"
    for name in ("cats", "dogs"):
        (held_out / name).mkdir(parents=True)
        groups = [found.classes, found.valid or {}, found.test or {}]
        for path in sorted({p for group in groups for p in group.get(name, [])} - picked):
            os.symlink(path, held_out / name / path.name)
    return layout, held_out


def accuracy(model, dataset, flip=False):
    """Accuracy on `dataset`; with `flip`, each photo's probabilities are averaged with its mirror image's."""
    import numpy as np

    from utils import evaluate

    predictions = evaluate.predict(model, dataset)
    if not flip:
        return float(np.mean(predictions.correct))
    mirrored = np.concatenate([model.predict_on_batch(images[:, :, ::-1]) for images, _ in dataset])
    averaged = (predictions.probabilities + evaluate.as_probabilities(mirrored)) / 2
    return float(np.mean(averaged.argmax(axis=1) == predictions.labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="labelled cat and dog photos, any layout the kit knows")
    parser.add_argument("--photos", type=int, default=1760)
    parser.add_argument("--network", default="plain", choices=("plain", "xception", "baseline"))
    parser.add_argument("--widths", default="32,64,128,128,256",
                        help='filters of each block\'s convolution; "64x2": two convolutions in that block')
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--augment", default="light", choices=AUGMENTATIONS)
    parser.add_argument("--minutes", type=float, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--stem", type=int, default=0, help="filters of a strided first convolution (0: none)")
    parser.add_argument("--no-batchnorm", action="store_true", help="plain network without batch normalization")
    parser.add_argument("--head", default="gap", choices=("gap", "flatten"),
                        help="gap: global average pooling and dropout; flatten: the 2017 Flatten + Dense(64)")
    parser.add_argument("--optimizer", default="adamw-schedule", choices=("adamw-schedule", "sgd-schedule", "rmsprop"),
                        help="AdamW or SGD (Nesterov momentum 0.9) with the time-budget schedule, or the 2017 RMSprop "
                             "at a fixed 1e-3")
    parser.add_argument("--interpolation", default="bilinear")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=0, help="a fixed number of epochs instead of --minutes")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--mixup", type=float, default=0.0, help="MixUp's alpha on training batches (0: none)")
    parser.add_argument("--cutmix", action="store_true", help="CutMix on training batches")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW's weight decay")
    parser.add_argument("--valid-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--final-size", type=int, default=0,
                        help="then train on, at this larger image size (progressive resizing); scored at it")
    parser.add_argument("--final-epochs", type=int, default=5, help="epochs at --final-size")
    parser.add_argument("--final-learning-rate", type=float, default=5e-4, help="peak learning rate at --final-size")
    parser.add_argument("--speed", action="store_true", help="only training photos per second")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cnn_candidates.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the lesson does
    import keras
    import numpy as np

    from utils import pipeline, schedules, training

    keras.utils.set_random_seed(args.seed)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cnn_candidates-"))
    widths = [int(w) if w.isdigit() else w for w in args.widths.split(",")]
    try:
        layout, held_out = prepare(pathlib.Path(args.data).expanduser().resolve(), args.photos, args.seed, work,
                                   valid_fraction=args.valid_fraction, test_fraction=args.test_fraction)

        def dataset(folder, **options):
            return pipeline.image_dataset(folder, args.size, args.batch_size, interpolation=args.interpolation,
                                          **options)

        train_ds = dataset(layout.root / "train", augment=augmentation(args.augment), seed=args.seed)
        model = network(args.network, args.size, widths, args.dropout, args.stem, not args.no_batchnorm, args.head)
        optimizer = (keras.optimizers.RMSprop(learning_rate=RMSPROP_RATE) if args.optimizer == "rmsprop" else
                     keras.optimizers.SGD(learning_rate=args.learning_rate, momentum=0.9, nesterov=True,
                                          weight_decay=args.weight_decay) if args.optimizer == "sgd-schedule" else
                     keras.optimizers.AdamW(learning_rate=args.learning_rate, weight_decay=args.weight_decay))
        one_hot_labels = bool(args.label_smoothing or args.mixup or args.cutmix)
        if one_hot_labels:  # one-hot labels for training and validation (evaluation below uses the int ones)
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
        else:
            loss = "sparse_categorical_crossentropy"
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        record = {"network": args.network, "widths": widths if args.network == "plain" else None,
                  "size": args.size, "stem": args.stem, "batchnorm": not args.no_batchnorm, "head": args.head,
                  "optimizer": args.optimizer, "augment": args.augment, "batch_size": args.batch_size,
                  "interpolation": args.interpolation, "parameters": model.count_params(),
                  "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
        if args.speed:
            model.fit(train_ds, epochs=1, verbose=0)  # warm-up: decoding, tracing
            start = time.perf_counter()
            model.fit(train_ds, epochs=2, verbose=0)
            record.update(kind="speed", photos_per_second=round(2 * train_ds.num_images / (time.perf_counter() - start), 1))
        else:
            valid_ds = dataset(layout.root / "valid", shuffle=False)
            steps = int(np.ceil(train_ds.num_images / args.batch_size))
            if args.optimizer == "rmsprop":  # no schedule: a fixed rate, stopped by the same minutes
                limit = [training.TimeLimit(args.minutes * 60)]
            else:
                limit = [schedules.TimeBudgetSchedule(args.learning_rate, None if args.epochs else args.minutes * 60,
                                                      args.epochs or 1000, steps)]
            if one_hot_labels:
                import tensorflow as tf

                def one_hot(dataset, mix=None):
                    def mixed(x, y):  # MixUp or CutMix blends the images and the labels of a training batch
                        batch = mix({"images": x, "labels": y})
                        return batch["images"], batch["labels"]

                    mapped = dataset.map(lambda x, y: (x, tf.one_hot(y, 2)))
                    if mix is not None:
                        mapped = mapped.map(mixed)
                    mapped.num_images, mapped.batch_size = dataset.num_images, dataset.batch_size
                    return mapped

                mix = (keras.layers.CutMix(seed=args.seed) if args.cutmix else
                       keras.layers.MixUp(args.mixup, seed=args.seed) if args.mixup else None)
                train_ds, valid_ds = one_hot(train_ds, mix), one_hot(valid_ds)
            run = training.fit(model, train_ds, valid_ds, epochs=1000, patience=None, verbose=0, callbacks=limit)
            if args.final_size:  # progressive resizing: the same weights (convolutions and global pooling) at a larger size
                record.update(first_size_test_accuracy=round(accuracy(model, dataset(layout.root / "test", shuffle=False)), 4),
                              first_size_held_out_accuracy=round(accuracy(model, dataset(held_out, shuffle=False, cache=False)), 4),
                              first_size_epochs=run.epochs, first_size_seconds=round(run.seconds, 1))
                weights = model.get_weights()
                args.size = args.final_size
                model = network(args.network, args.size, widths, args.dropout, args.stem, not args.no_batchnorm,
                                args.head)
                model.set_weights(weights)
                model.compile(optimizer=keras.optimizers.AdamW(learning_rate=args.final_learning_rate,
                                                               weight_decay=args.weight_decay),
                              loss=loss, metrics=["accuracy"])
                train_ds = dataset(layout.root / "train", augment=augmentation(args.augment), seed=args.seed)
                valid_ds = dataset(layout.root / "valid", shuffle=False)
                if one_hot_labels:
                    train_ds, valid_ds = one_hot(train_ds, mix), one_hot(valid_ds)
                final_schedule = schedules.TimeBudgetSchedule(args.final_learning_rate, None, args.final_epochs,
                                                              int(np.ceil(train_ds.num_images / args.batch_size)))
                final = training.fit(model, train_ds, valid_ds, epochs=args.final_epochs, patience=None, verbose=0,
                                     callbacks=[final_schedule])
                record.update(final_size=args.size, final_epochs=final.epochs, final_seconds=round(final.seconds, 1),
                              final_learning_rate=args.final_learning_rate)
            record.update(
                kind="accuracy", minutes=None if args.epochs else args.minutes,
                learning_rate=RMSPROP_RATE if args.optimizer == "rmsprop" else args.learning_rate,  # the rate used
                dropout=args.dropout, seed=args.seed, epochs=run.epochs, train_seconds=round(run.seconds, 1),
                photos_per_second=round(run.images_per_second, 1),
                train_accuracy_last_epoch=round(run.final("accuracy"), 4),
                valid_accuracy=round(run.final("val_accuracy"), 4),
                test_accuracy=round(accuracy(model, dataset(layout.root / "test", shuffle=False)), 4),
                test_accuracy_flip_averaged=round(accuracy(model, dataset(layout.root / "test", shuffle=False),
                                                           flip=True), 4),
                label_smoothing=args.label_smoothing, mixup=args.mixup, cutmix=args.cutmix, weight_decay=args.weight_decay,
                held_out_accuracy=round(accuracy(model, dataset(held_out, shuffle=False, cache=False)), 4),
                held_out_accuracy_flip_averaged=round(
                    accuracy(model, dataset(held_out, shuffle=False, cache=False), flip=True), 4),
                splits={split: sum(layout.counts[split].values()) for split in ("train", "valid", "test")},
                held_out_photos=sum(1 for _ in held_out.rglob("*.jpg")))
        record.update(load_average=[round(v, 2) for v in os.getloadavg()], written=time.strftime("%Y-%m-%dT%H:%M:%S"),
                      command="benchmarks/cnn_candidates.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = pathlib.Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records + [record], indent=1) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
