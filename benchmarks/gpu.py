"""What one GPU does with the lessons' networks: images per second and peak GPU memory per epoch.

Run it on the machine whose GPU you want figures for (a gpubox, a SkyPilot
machine, your own); it writes `benchmarks/results/gpu-<GPU name>.json`:

    .venv/bin/python benchmarks/gpu.py
    .venv/bin/python benchmarks/gpu.py --allow-cpu --tiny --out /tmp/gpu.json   # checks this script on a CPU

Measured, each after a warm-up (tracing, XLA compilation) and with the GPU's
peak memory counter reset first (so the peak includes the warm-up):

- lesson 3's improved network, one epoch at 128 and at 224 pixels, in float32
  and mixed precision, with XLA off and on;
- lesson 4's VGG16 (random weights: they take as long as ImageNet's) at 224
  pixels, an epoch with the base frozen and an epoch with block 5 unfrozen,
  in float32 and mixed precision;
- lesson 5's bird classifier at 32 pixels, in float32 and mixed precision.

The networks are the lessons' own: their `make_*` functions are read from the
notebooks. The images are random pixels already in memory, so the figures are
the network's speed on the GPU, not the input pipeline's (lesson 3's
augmentation runs on the CPU; `benchmarks/pipeline.py` measures that).
Precision, XLA and the batch per replica come from `utils.hardware`, as in
the lessons. Without a GPU it prints one line and measures nothing.
"""

import argparse
import ast
import dataclasses
import datetime
import gc
import json
import pathlib
import platform
import re
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOTEBOOKS = ROOT / "notebooks"
BATCH_SIZE = 32  # the lessons' BATCH_SIZE, per replica


def lesson_functions(notebook, names):
    """The functions `names` as a lesson's notebook defines them (only the `def`s are run; benchmarks/lesson2_memory.py
    reads lesson 2's too)."""
    import keras
    import nbformat
    import numpy as np

    namespace = {"keras": keras, "np": np}
    for cell in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells:
        if cell.cell_type != "code" or "def " not in cell.source:
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                exec(ast.get_source_segment(cell.source, node), namespace)
    missing = [name for name in names if name not in namespace]
    if missing:
        sys.exit(f"error: {notebook} no longer defines {', '.join(missing)}; update the benchmark to match")
    return namespace


def plan(tiny):
    """The measurements: (lesson, what, image size, mixed precision, XLA)."""
    sizes = (32, 48) if tiny else (128, 224)
    vgg_size = 48 if tiny else 224
    measurements = [(3, "improved network epoch", size, mixed, xla)
                    for size in sizes for mixed in (False, True) for xla in (False, True)]
    measurements += [(4, what, vgg_size, mixed, False)
                     for what in ("frozen-base epoch", "fine-tune epoch") for mixed in (False, True)]
    measurements += [(5, "bird classifier epoch", 32, mixed, False) for mixed in (False, True)]
    return measurements


def build(lesson, what, image_size):
    """The lesson's model for one measurement, uncompiled, and its optimizer's learning rate."""
    import keras

    if lesson == 3:
        make_improved = lesson_functions("03_cnn_from_scratch.ipynb", ["make_improved"])["make_improved"]
        return make_improved(image_size, 2), 1e-3  # two classes: cats and dogs
    if lesson == 4:
        from utils import transfer

        make_head = lesson_functions("04_vgg16_finetune.ipynb", ["make_head"])["make_head"]
        base = transfer.vgg16(weights=None, image_size=image_size)
        base.trainable = False
        if what == "fine-tune epoch":  # as lesson 4 unfreezes it: block 5 learns, blocks 1-4 stay
            base.trainable = True
            for layer in base.layers:
                layer.trainable = layer.name.startswith("block5")
        inputs = keras.Input((image_size, image_size, 3))
        features = base(inputs, training=False)
        return keras.Model(inputs, make_head(features.shape[1:], 2, seed=0)(features)), 1e-5
    make = lesson_functions("05_bird_classifier.ipynb", ["make_bird_classifier"])["make_bird_classifier"]
    normalize = keras.layers.Normalization(axis=None, mean=120.0, variance=4000.0)  # adapt's result, roughly
    return make(normalize, image_size=image_size), 1e-3


def random_images(image_size, batch_size, pool=64, seed=0):
    """An endless dataset of batches of random pixels (0-255, float32) and labels, from a small pool in memory."""
    import numpy as np
    import tensorflow as tf

    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, (pool, image_size, image_size, 3), dtype=np.uint8)
    labels = generator.integers(0, 2, pool)
    return (tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
            .map(lambda image, label: (tf.cast(image, tf.float32), label))
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def peak_memory_mib(reset=False):
    """The GPU's peak memory in MiB since the last reset (None without a GPU); `reset` starts a new peak."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    if reset:
        tf.config.experimental.reset_memory_stats("GPU:0")
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def hardware_for(hardware, mixed, xla, allow_cpu):
    """`hardware.detect(...)`; on a CPU with --allow-cpu, mixed precision is forced to exercise that path."""
    try:
        return hardware.detect(mixed_precision=mixed, xla=xla)
    except ValueError:
        if not (mixed and allow_cpu):
            raise
        return dataclasses.replace(hardware.detect(mixed_precision=False, xla=xla), precision="mixed_float16")


def measure(hardware, lesson, what, image_size, mixed, xla, steps, epochs, allow_cpu=False):
    """One measurement: the median epoch of `epochs` timed epochs of `steps` steps; returns its record."""
    import keras

    from utils import training

    keras.backend.clear_session()
    gc.collect()
    hw = hardware_for(hardware, mixed, xla, allow_cpu)
    batch_size = hw.global_batch(BATCH_SIZE if steps > 2 else 8)
    with hw.scope():
        model, learning_rate = build(lesson, what, image_size)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      jit_compile=hw.xla)
    dataset = random_images(image_size, batch_size)
    peak_memory_mib(reset=True)
    model.fit(dataset, epochs=1, steps_per_epoch=min(steps, 3), verbose=0, shuffle=False)  # warm-up: tracing
    timer = training.EpochTimer()
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
                        callbacks=[timer])
    seconds = statistics.median(history.history["seconds"])
    peak = peak_memory_mib()
    return {"lesson": lesson, "what": what, "image_size": image_size, "batch_size": batch_size,
            "precision": hw.precision, "xla": hw.xla, "replicas": hw.replicas, "steps_per_epoch": steps,
            "seconds_per_epoch": round(seconds, 4), "images_per_second": round(steps * batch_size / seconds, 1),
            "peak_gpu_memory_mib": None if peak is None else round(peak, 1), "hardware": str(hw)}


def slug(name):
    """"NVIDIA A10G" -> "nvidia-a10g": a file name from a GPU's name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def versions():
    import keras
    import tensorflow as tf

    build_info = tf.sysconfig.get_build_info()
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "cuda": build_info.get("cuda_version"), "cudnn": build_info.get("cudnn_version")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement (the median is kept)")
    parser.add_argument("--out", type=pathlib.Path, help="default: benchmarks/results/gpu-<GPU name>.json")
    parser.add_argument("--allow-cpu", action="store_true", help="measure on the CPU when there is no GPU")
    parser.add_argument("--tiny", action="store_true", help="tiny images, batches and epochs: checks the script")
    parser.add_argument("--lessons", type=int, nargs="+", choices=(3, 4, 5), default=(3, 4, 5),
                        help="measure only these lessons' networks")
    parser.add_argument("--precision", choices=("float32", "mixed_float16"),
                        help="measure only in this precision (default: both)")
    parser.add_argument("--image-size", type=int, help="measure only at this image size (default: every size planned)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.epochs < 1:
        parser.error("--steps and --epochs must be 1 or more")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("no GPU found: nothing measured; run this on a machine with an NVIDIA GPU "
              "(`python -m utils.doctor` shows what TensorFlow sees), or add --allow-cpu --tiny to check the script.")
        return 0
    try:
        from utils import hardware
    except ImportError as error:
        sys.exit(f"error: utils.hardware could not be imported ({error}); update the kit (git pull) and run again")
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    steps, epochs = (2, 1) if args.tiny else (args.steps, args.epochs)
    out = args.out or ROOT / "benchmarks" / "results" / f"gpu-{slug(name)}.json"
    results = []
    chosen = [(lesson, what, image_size, mixed, xla) for lesson, what, image_size, mixed, xla in plan(args.tiny)
              if lesson in args.lessons and args.precision in (None, "mixed_float16" if mixed else "float32")
              and args.image_size in (None, image_size)]
    for lesson, what, image_size, mixed, xla in chosen:
        result = measure(hardware, lesson, what, image_size, mixed, xla, steps, epochs, args.allow_cpu)
        results.append(result)
        peak = result["peak_gpu_memory_mib"]
        print(f"lesson {lesson} {what:<24} {image_size:>3} px  {result['precision']:<13} "
              f"XLA {'on ' if xla else 'off'}  {result['images_per_second']:8.1f} images/s"
              + (f"  peak {peak:7.0f} MiB" if peak is not None else ""), flush=True)
    record = {"benchmark": "benchmarks/gpu.py",
              "command": "benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "gpu": name, "gpus": len(gpus), "tiny": args.tiny, "versions": versions(),
              "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "measurements": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
