"""Images per second: `utils.pipeline` against the 2017 `ImageDataGenerator`.

Both read the same JPEGs at 150x150 in batches of 32 with augmentation
(the 2017 generator: flip, shear, zoom; ours, stock Keras layers: flip,
rotation, zoom, translation and contrast). Each side runs in its own subprocess, so its peak memory
(ru_maxrss of the whole process) is its own. No model is trained: this
measures only how fast each one can feed a model.

    .venv/bin/python benchmarks/pipeline.py                 # 1,500 stand-in JPEGs
    .venv/bin/python benchmarks/pipeline.py --synth 3000 --epochs 4
    .venv/bin/python benchmarks/pipeline.py --data data/layouts/dogscats/seed0-XXXX/train  (from `utils.data organize`)
    .venv/bin/python benchmarks/pipeline.py --out benchmarks/results/pipeline.json   # the committed figures
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

IMAGE_SIZE, BATCH_SIZE = 150, 32


def measure_ours(folder, epochs):
    import tensorflow as tf
    from utils import pipeline
    tf.constant(0)  # start TensorFlow's runtime before the clock, as the baseline never uses it
    start = time.perf_counter()  # the first epoch includes building the dataset (and compiling)
    import keras

    augment = keras.Sequential([  # the 2017 generator's changes and more, as stock Keras layers
        keras.layers.RandomFlip("horizontal", seed=0), keras.layers.RandomRotation(0.1, seed=0),
        keras.layers.RandomZoom(0.2, seed=0), keras.layers.RandomTranslation(0.1, 0.1, seed=0),
        keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=0)])
    dataset = pipeline.image_dataset(folder, IMAGE_SIZE, BATCH_SIZE, augment=augment, shuffle=True,
                                     cache=True, seed=0)
    rates = []
    for epoch in range(epochs):
        start, seen = start if epoch == 0 else time.perf_counter(), 0
        for images, labels in dataset:
            seen += int(images.shape[0])
        rates.append(seen / (time.perf_counter() - start))
    return rates, seen


def measure_baseline(folder, epochs):
    # The 2017 course's input code (Keras blog, "Building powerful image classification models").
    from tf_keras.preprocessing.image import ImageDataGenerator
    start = time.perf_counter()
    generator = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    batches = generator.flow_from_directory(str(folder), target_size=(IMAGE_SIZE, IMAGE_SIZE),
                                            batch_size=BATCH_SIZE, class_mode="binary", seed=0)
    rates = []
    for epoch in range(epochs):
        start, seen = start if epoch == 0 else time.perf_counter(), 0
        for _ in range(len(batches)):
            images, labels = next(batches)
            seen += len(images)
        rates.append(seen / (time.perf_counter() - start))
    return rates, seen


def run_side(side, folder, epochs):
    """Runs one side in a fresh Python process and returns its figures."""
    command = [sys.executable, __file__, "--side", side, "--data", str(folder), "--epochs", str(epochs)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode:
        raise RuntimeError(f"the {side} benchmark failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def stand_in_folder(count, workdir):
    """Draws `count` toy_pets images and hard-links them into class folders by name (cat.0.jpg -> cats/)."""
    from utils import synth
    raw, organized = workdir / "raw", workdir / "organized"
    synth.toy_pets(raw, count, seed=0, test_count=0)
    for path in sorted((raw / "train").glob("*.jpg")):
        target = organized / "train" / f"{path.name.split('.')[0]}s" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return organized / "train"


def describe(folder):
    from PIL import Image
    files = sorted(pathlib.Path(folder).rglob("*.jpg"))
    sizes = [Image.open(path).size for path in files[:: max(1, len(files) // 200)]]
    width = sum(size[0] for size in sizes) / len(sizes)
    height = sum(size[1] for size in sizes) / len(sizes)
    return f"{len(files)} JPEGs in {folder}, about {width:.0f}x{height:.0f} on average"


def report(folder, epochs, out=None):
    description = describe(folder)
    print(description)
    load_before = os.getloadavg()[0]
    print(f"load before: {load_before:.2f} (1-minute average, {os.cpu_count()} CPUs)")
    results = {side: run_side(side, folder, epochs) for side in ("baseline", "ours")}
    print(f"load after:  {os.getloadavg()[0]:.2f}")
    print(f"\n{'':38} {'first epoch':>12} {'steady state':>13} {'peak memory':>12}")
    names = {"baseline": "ImageDataGenerator (tf_keras, 2017)", "ours": "utils.pipeline (tf.data, cached)"}
    for side, figures in results.items():
        steady = figures["rates"][1:] or figures["rates"]
        figures["first"], figures["steady"] = figures["rates"][0], sum(steady) / len(steady)
        print(f"{names[side]:38} {figures['first']:8.0f} im/s {figures['steady']:8.0f} im/s "
              f"{figures['peak_mb']:8.0f} MB")
    ours, baseline = results["ours"], results["baseline"]
    print(f"{'ratio (ours / ImageDataGenerator)':38} {ours['first'] / baseline['first']:9.1f}x "
          f"{ours['steady'] / baseline['steady']:12.1f}x")
    print(f"(steady state: mean of epochs 2-{epochs}; each side in its own process)")
    if out:
        record = {"benchmark": "benchmarks/pipeline.py", "command": " ".join(["benchmarks/pipeline.py", *sys.argv[1:]]),
                  "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "images": description,
                  "image_size": IMAGE_SIZE, "batch_size": BATCH_SIZE, "epochs": epochs,
                  "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                  "sides": {names[side]: {"first_epoch_images_per_second": round(figures["first"], 1),
                                          "steady_images_per_second": round(figures["steady"], 1),
                                          "peak_memory_mb": round(figures["peak_mb"]), "rates": figures["rates"]}
                            for side, figures in results.items()},
                  "ratio_first": round(ours["first"] / baseline["first"], 2),
                  "ratio_steady": round(ours["steady"] / baseline["steady"], 2)}
        pathlib.Path(out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a folder of class subfolders of JPEGs, e.g. the train/ folder "
                                         "`python -m utils.data organize` made")
    parser.add_argument("--synth", type=int, help="draw this many toy_pets JPEGs instead (default 1500)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per side (at least 2)")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    parser.add_argument("--side", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch and at least one steady-state epoch")
    if args.side:  # inside the subprocess: measure one side, print JSON
        measure = measure_ours if args.side == "ours" else measure_baseline
        rates, images = measure(args.data, args.epochs)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"rates": rates, "images": images, "peak_mb": peak_mb}))
        return
    if args.data and not args.synth:
        report(pathlib.Path(args.data).resolve(), args.epochs, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-benchmark-") as workdir:
        report(stand_in_folder(args.synth or 1500, pathlib.Path(workdir)), args.epochs, args.out)


if __name__ == "__main__":
    main()
