"""How much memory lesson 2's brute-force network takes in full mode, measured at a fraction of its size.

Lesson 2's section (c) places `SHIFTED_COPIES` copies of every training digit on 84x84 canvases (uint8) and trains
a fully connected network on them with `fit(..., validation_split=0.1)`. With MNIST's 60,000 digits that is
480,000 canvases, 3.4 GB, and Keras holds more copies of them while it trains. MNIST cannot be downloaded on the
kit's test machine, so this runs the lesson's own code (`place_on_canvas`, `random_offsets`, the network of cell
33, the `fit` call of cell 34, for three training steps) on random 28x28 digits, for each number of digits given,
and records the peak resident memory of this process (sampled every 50 ms) in
`benchmarks/results/lesson2_memory.json`:

    .venv/bin/python benchmarks/lesson2_memory.py 7500 15000

Peak memory grows linearly with the number of digits; the lesson states the full run's figure as an estimate
from the fitted line, with this file as its basis.
"""

import argparse
import json
import os
import pathlib
import platform
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

FULL_DIGITS = 60_000  # MNIST's training digits


def measure(digits, copies, side=28):
    import keras

    import gpu
    import lesson_times

    lesson = gpu.lesson_functions("02_fc_vs_cnn.ipynb", ["place_on_canvas", "random_offsets"])
    place_on_canvas, random_offsets = lesson["place_on_canvas"], lesson["random_offsets"]
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (digits, side, side), dtype=np.uint8)
    y_train = rng.integers(0, 10, digits)
    canvas_size = 3 * side
    state = {}

    def lesson_cells():  # cells 33 and 34, as the lesson runs them (3 steps: the memory is taken before the first)
        repeated = np.repeat(x_train, copies, axis=0)
        state["train"] = place_on_canvas(repeated, canvas_size, random_offsets(len(repeated), side, canvas_size,
                                                                               rng))[..., np.newaxis]
        labels = np.repeat(y_train, copies)
        model = keras.Sequential([keras.Input(shape=(canvas_size, canvas_size, 1)), keras.layers.Rescaling(1 / 255),
                                  keras.layers.Flatten(), keras.layers.Dense(512, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(state["train"], labels, epochs=1, batch_size=64, validation_split=0.1, verbose=0, steps_per_epoch=3)

    before = psutil.Process().memory_info().rss
    with lesson_times.PeakMemory(interval=0.05) as memory:
        lesson_cells()
    peak = memory.peak
    return {"digits": digits, "shifted_copies": copies, "canvases": digits * copies,
            "canvases_gb": round(state["train"].nbytes / 1e9, 3), "rss_before_gb": round(before / 1e9, 3),
            "peak_rss_gb": round(peak / 1e9, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("digits", nargs="+", type=int, help="numbers of training digits to measure with")
    parser.add_argument("--copies", type=int, default=8, help="SHIFTED_COPIES (the lesson's default: 8)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "lesson2_memory.json")
    args = parser.parse_args(argv)
    runs = [_in_child(digits, args.copies) for digits in args.digits]  # each in a fresh process
    slope, intercept = np.polyfit([run["digits"] for run in runs], [run["peak_rss_gb"] for run in runs], 1)
    report = {
        "benchmark": "benchmarks/lesson2_memory.py",
        "command": "python " + " ".join(["benchmarks/lesson2_memory.py"] + list(argv or sys.argv[1:])),
        "what": "peak resident memory of lesson 2's section (c) (shifted copies on 84x84 canvases, then fit with "
                "validation_split=0.1), on random digits, each size in a fresh process",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "runs": runs,
        "full_mode_estimate_gb": round(slope * FULL_DIGITS + intercept, 1),
        "estimate_basis": f"a straight line through the runs, at MNIST's {FULL_DIGITS:,} digits",
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _in_child(digits, copies):
    """`measure` in a child process, so that each size starts from a fresh interpreter's memory."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (digits, copies))


if __name__ == "__main__":
    main()
