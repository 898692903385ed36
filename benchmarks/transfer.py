"""Seconds per epoch: a dense head on cached VGG16 features against the same head on the frozen base.

Both sides see the same images in the same batches. One side is lesson 4's
"route 3" before unfreezing: every epoch pushes every image through VGG16's
frozen convolutional base and trains the head on top. The other is "route 1":
`transfer.bottleneck_features` runs the base once and stores the features on
disk, then each epoch trains only the head on them. Random weights
(`--weights None`, the default) take exactly as long as ImageNet's, so this
runs offline. It also reports the peak memory growth while extracting.

    .venv/bin/python benchmarks/transfer.py                       # 256 drawn images at 224x224
    .venv/bin/python benchmarks/transfer.py --images 512 --batch-size 64
    .venv/bin/python benchmarks/transfer.py --data data/layouts/dogscats/seed0-XXXX/sample/train --weights imagenet
    .venv/bin/python benchmarks/transfer.py --json benchmarks/results/transfer.json   # the committed figures
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def draw_images(folder, count, image_size, seed=0):
    """Writes `count` noise JPEGs into two class folders (content does not change the timing)."""
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(seed)
    for index in range(count):
        class_folder = folder / ("cats", "dogs")[index % 2]
        class_folder.mkdir(parents=True, exist_ok=True)
        pixels = generator.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(class_folder / f"{index:05d}.jpg", quality=90)
    return folder


def peak_rss_growth_mib(function):
    """Runs `function`; returns (its result, peak resident memory above the start in MiB)."""
    def kib(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

    before = kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM, the peak, to the current VmRSS
    result = function()
    return result, (kib("VmHWM") - before) / 1024


def time_epochs(model, dataset, epochs):
    """Median seconds per epoch of one `model.fit` call, after a one-batch warm-up (tracing).

    Each epoch is timed from its start to its end inside the call, as
    `training.fit` records it, so fit's own set-up is not counted.
    """
    from utils import training

    model.fit(dataset.take(1), epochs=1, verbose=0, shuffle=False)
    timer = training.EpochTimer()
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=[timer])
    return statistics.median(history.history["seconds"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256, help="images to draw (without --data)")
    parser.add_argument("--data", type=pathlib.Path, help="a folder of class subfolders instead")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weights", default="None", help='"None" (random) or "imagenet"')
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from utils import transfer

    weights = None if args.weights == "None" else args.weights
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        folder = args.data or draw_images(scratch / "images", args.images, args.image_size)
        listed = keras.utils.image_dataset_from_directory(
            folder, image_size=(args.image_size, args.image_size), batch_size=args.batch_size,
            shuffle=False, verbose=False)
        images = listed.cache()  # decoded once, before any clock: both sides read the same memory
        for _ in images:
            pass
        images.file_paths, images.class_names = listed.file_paths, listed.class_names
        count = len(listed.file_paths)
        print(f"{count} images at {args.image_size}x{args.image_size}, batches of {args.batch_size}, "
              f"weights={weights}, on {tf.config.list_physical_devices()[-1].device_type}")

        keras.utils.set_random_seed(0)
        base = transfer.vgg16(weights=weights, image_size=args.image_size)
        base.trainable = False  # lesson 4's model: the frozen base, then its head

        def make_head(feature_shape):
            head = keras.Sequential([keras.Input(feature_shape), keras.layers.Flatten(),
                                     keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5),
                                     keras.layers.Dense(len(images.class_names), activation="softmax")])
            head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
            return head

        inputs = keras.Input((args.image_size, args.image_size, 3))
        features_out = base(inputs, training=False)
        model = keras.Model(inputs, make_head(features_out.shape[1:])(features_out))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        frozen_epoch = time_epochs(model, images, epochs=1)
        print(f"one epoch through the frozen base: {frozen_epoch:.2f} s")

        features, growth = peak_rss_growth_mib(lambda: transfer.bottleneck_features(
            base, images, scratch / "features"))
        print(f"feature extraction: {features.seconds:.2f} s, {features.features.nbytes / 2**20:.0f} MiB "
              f"of float16 on disk, peak memory growth {growth:.0f} MiB")

        head = make_head(features.features.shape[1:])
        feature_ds = transfer.features_dataset(features, args.batch_size, shuffle=True, seed=0)
        head_epoch = time_epochs(head, feature_ds, epochs=5)
        print(f"one epoch of the head on cached features: {head_epoch:.3f} s")

    ratio = frozen_epoch / head_epoch
    print(f"head on cached features is {ratio:.0f}x faster per epoch "
          f"({frozen_epoch:.2f} s vs {head_epoch:.3f} s); extraction pays for itself after "
          f"{features.seconds / max(frozen_epoch - head_epoch, 1e-9):.1f} epochs")
    figures = {"benchmark": "benchmarks/transfer.py", "command": " ".join(["benchmarks/transfer.py", *sys.argv[1:]]),
               "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
               "load_average_after": [round(load, 2) for load in os.getloadavg()],
               "images": count, "image_size": args.image_size, "batch_size": args.batch_size,
               "weights": weights, "frozen_base_epoch_seconds": frozen_epoch,
               "head_epoch_seconds": head_epoch, "ratio": ratio,
               "extraction_seconds": features.seconds, "extraction_peak_rss_growth_mib": growth}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
