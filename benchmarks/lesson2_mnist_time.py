"""How long lesson 2 takes in sample mode with MNIST, measured on random digits of MNIST's shape.

MNIST cannot be downloaded on the kit's test machine. The time a network takes to train does not depend on what
its pixels show, only on how many there are, so this writes an `mnist.npz` of random digits with MNIST's shapes
(60,000 training and 10,000 test digits, 28x28, uint8, random labels) into a temporary folder and runs
`notebooks/02_fc_vs_cnn.ipynb` top to bottom on it through the kit's runner (`utils.lessons.run`, as
`python -m utils.lessons run` does), with `-p DATA_DIR` pointing there and the lesson's own defaults otherwise:
sample mode, 3,000 training and 1,000 test digits on 84x84 canvases, every network trained for 10 epochs with
batch 64 and validation_split=0.1, 8 shifted copies, the sliding window over 50 digits. It writes the runner's
time for the whole lesson and the training times the lesson itself measured (its `metrics.json`) to
`benchmarks/results/lesson2_mnist_time.json`:

    .venv/bin/python benchmarks/lesson2_mnist_time.py

The accuracies of this run mean nothing (the digits are noise and their labels random); only the times count.
The machine's load average is recorded before and after: another program on the machine slows the run.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MNIST_SHAPES = {"train": 60_000, "test": 10_000}
TIMES = ["fc_train_seconds", "cnn_train_seconds", "fc_augmented_train_seconds", "cnn_pooled_train_seconds"]


def write_random_mnist(folder, seed=0):
    """An `mnist.npz` in `folder` with MNIST's keys, shapes and types, holding random digits and labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in MNIST_SHAPES.items():
        arrays[f"x_{split}"] = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, count).astype(np.uint8)
    np.savez(folder / "mnist.npz", **arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="another lesson parameter (as `python -m utils.lessons run -p`), to try the script "
                             "quickly; the default figures are for the lesson's own defaults")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "lesson2_mnist_time.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lesson2_mnist_time-") as folder:
        folder = pathlib.Path(folder)
        os.environ["COURSE_MODELS_DIR"] = str(folder / "models")  # the lesson's run folder goes here, not models/
        from utils import lessons

        (folder / "mnist").mkdir()
        write_random_mnist(folder / "mnist")
        parameters = {name: lessons.parse_value(value) for name, value in args.p}
        parameters["DATA_DIR"] = str(folder / "mnist")
        load_before = [round(value, 2) for value in os.getloadavg()]
        result = lessons.run(ROOT / "notebooks" / "02_fc_vs_cnn.ipynb", parameters, out_dir=folder / "executed",
                             html=False, progress=False)
        load_after = [round(value, 2) for value in os.getloadavg()]
        if result.status != "ok":
            sys.exit(f"error: the lesson failed: {result.error}")
        [metrics_file] = (folder / "models" / "02_fc_vs_cnn" / "runs").glob("*/metrics.json")
        metrics = json.loads(metrics_file.read_text())

    training = {name: round(metrics[name], 1) for name in TIMES}
    sliding = metrics["sliding_window_seconds_per_digit"] * metrics["sliding_window_digits"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    report = {
        "benchmark": "benchmarks/lesson2_mnist_time.py",
        "command": "python " + " ".join(["benchmarks/lesson2_mnist_time.py"] + list(argv or sys.argv[1:])),
        "what": "lesson 2 run top to bottom through utils.lessons.run on an mnist.npz of random digits with MNIST's "
                "shapes, with the lesson's default parameters (sample mode) but DATA_DIR; lesson_seconds: the "
                "runner's time for the whole lesson; training_seconds: what the lesson measured for each network's "
                "fit; the accuracies are meaningless (random digits and labels) and left out",
        "commit": commit.stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "load_average_note": "os.getloadavg() (1, 5 and 15 minutes): a load before the run means other work "
                             "shared the machine",
        "parameters": {name: value for name, value in parameters.items() if name != "DATA_DIR"},
        "train_count": metrics["train_count"], "test_count": metrics["test_count"],
        "canvas_size": metrics["canvas_size"], "epochs": metrics["epochs"],
        "shifted_copies": metrics["shifted_copies"],
        "lesson_seconds": round(result.seconds, 1),
        "lesson_minutes": round(result.seconds / 60, 1),
        "training_seconds": training,
        "training_seconds_total": round(sum(metrics[name] for name in TIMES), 1),
        "sliding_window_digits": metrics["sliding_window_digits"],
        "sliding_window_seconds_per_digit": round(metrics["sliding_window_seconds_per_digit"], 3),
        "sliding_window_seconds": round(sliding, 1),
        "cnn_share_of_lesson": round(metrics["cnn_train_seconds"] / result.seconds, 2),
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=True) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
