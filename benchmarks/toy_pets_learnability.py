"""Is toy_pets a fair stand-in? A small CNN against a fully connected net.

Draws `--count` toy_pets images, holds out a fifth of each class, and trains
three models of about the same size for a few epochs on the rest: a fully
connected net, a small CNN, and the same CNN behind stock augmentation layers.
A stand-in that teaches lesson 3's point should have the CNN clearly ahead.

    .venv/bin/python benchmarks/toy_pets_learnability.py
    .venv/bin/python benchmarks/toy_pets_learnability.py --count 2000 --epochs 15 --image-size 96
    .venv/bin/python benchmarks/toy_pets_learnability.py --count 500 --epochs 60   # little data
    .venv/bin/python benchmarks/toy_pets_learnability.py --out benchmarks/results/toy_pets_learnability.json
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from utils import pipeline, synth  # noqa: E402


def split_into_folders(source, dest, held_out_fraction=0.2):
    """Hard-links `cat.N.jpg` / `dog.N.jpg` into dest/{train,held_out}/{cats,dogs}/."""
    for kind in ("cat", "dog"):
        files = sorted((source / "train").glob(f"{kind}.*.jpg"), key=lambda path: int(path.name.split(".")[1]))
        held_out = round(len(files) * held_out_fraction)
        for index, path in enumerate(files):
            split = "held_out" if index < held_out else "train"
            target = dest / split / f"{kind}s" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return dest / "train", dest / "held_out"


def small_cnn(image_size, augment=None):
    layers = [keras.Input((image_size, image_size, 3))] + ([augment] if augment is not None else [])
    layers += [keras.layers.Rescaling(1 / 255)]
    for filters in (16, 32, 64):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dropout(0.3), keras.layers.Dense(32, activation="relu"),
               keras.layers.Dense(2)]
    return keras.Sequential(layers, name="small_cnn")


def dense_net(image_size, parameters):
    """A fully connected net with one hidden layer, sized to about `parameters` weights."""
    inputs = image_size * image_size * 3
    hidden = max(2, round(parameters / (inputs + 3)))
    return keras.Sequential([keras.Input((image_size, image_size, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(2)], name="dense_net")


def train_and_evaluate(model, train_ds, held_out_ds, epochs, learning_rate=1e-3):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_ds, epochs=epochs, verbose=0)
    return model.evaluate(held_out_ds, verbose=0, return_dict=True)["accuracy"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="toy_pets images in all (train + held out)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    load_before, results = os.getloadavg()[0], {}
    with tempfile.TemporaryDirectory(prefix="toy-pets-") as workdir:
        workdir = pathlib.Path(workdir)
        synth.toy_pets(workdir / "raw", args.count, seed=args.seed, test_count=0)
        train_folder, held_out_folder = split_into_folders(workdir / "raw", workdir / "split")
        size = args.image_size
        train_ds = pipeline.image_dataset(train_folder, size, 32, seed=args.seed)
        held_out_ds = pipeline.image_dataset(held_out_folder, size, 64, shuffle=False)
        print(f"{train_ds.num_images} training and {held_out_ds.num_images} held-out images at {size}x{size}, "
              f"{args.epochs} epochs, load {os.getloadavg()[0]:.1f}")
        cnn_parameters = small_cnn(size).count_params()
        models = {
            "fully connected": lambda: dense_net(size, cnn_parameters),
            "small CNN": lambda: small_cnn(size),
            "small CNN + augmentation": lambda: small_cnn(size, keras.Sequential([
                keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                keras.layers.RandomZoom(0.2), keras.layers.RandomTranslation(0.1, 0.1)])),
        }
        for name, build in models.items():
            keras.utils.set_random_seed(args.seed)
            model, start = build(), time.perf_counter()
            accuracy = train_and_evaluate(model, train_ds, held_out_ds, args.epochs)
            seconds = time.perf_counter() - start
            results[name] = {"parameters": model.count_params(), "held_out_accuracy": round(float(accuracy), 4),
                             "seconds": round(seconds, 1)}
            print(f"{name:26} {model.count_params():8,d} parameters   held-out accuracy {accuracy:.3f}"
                  f"   ({seconds:.0f} s)")
        counts = {"train": train_ds.num_images, "held_out": held_out_ds.num_images}
    if args.out:
        record = {"benchmark": "benchmarks/toy_pets_learnability.py",
                  "command": " ".join(["benchmarks/toy_pets_learnability.py", *sys.argv[1:]]),
                  "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "images": counts,
                  "image_size": args.image_size, "epochs": args.epochs, "seed": args.seed,
                  "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                  "models": results}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
