"""How much lesson 5's sample-mode figures move from run to run on one machine.

Runs `notebooks/05_bird_classifier.ipynb` in sample mode with its default
parameters (the same seed every time) several times in a row, through the
kit's own runner, `utils.lessons.run`, as `benchmarks/lesson_times.py` does,
and writes what each run recorded in its `metrics.json` (epochs, training
seconds, images per second, threshold, precision, recall, accuracy) to
`benchmarks/results/lesson5_sample_spread.json`:

    .venv/bin/python benchmarks/lesson5_sample_spread.py

Sample mode stops training after `SAMPLE_TRAIN_MINUTES`, so the number of
epochs, and with it the figures, depends on how fast the machine is while it
runs: the file records the CPU count, the load average before each run, and
how fast the machine trains lesson 5's network just before each run, measured
in a fresh process by the same command as
`benchmarks/results/cpu_lesson5_network.json` (`benchmarks/gpu.py --allow-cpu
--lessons 5 --precision float32`, written to a temporary file).
Nothing goes into the kit's data/, models/ or build/: unless
COURSE_DATA_DIR and COURSE_MODELS_DIR are set, they point at a temporary
folder (empty, as on a fresh clone: the first run draws the stand-in), and
the executed copies go to a temporary folder too.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LESSON = ROOT / "notebooks" / "05_bird_classifier.ipynb"
SPEED = ["benchmarks/gpu.py", "--allow-cpu", "--lessons", "5", "--precision", "float32"]
KEPT = ("epochs", "best_epoch", "seconds", "images_per_second", "threshold", "precision", "recall", "accuracy")


def network_speed(out):
    """Images per second of lesson 5's network alone on this machine now, by `benchmarks/gpu.py` (None if it fails)."""
    done = subprocess.run([sys.executable, *SPEED, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.read_text())["measurements"][0]["images_per_second"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    parser.add_argument("--out", type=pathlib.Path,
                        default=ROOT / "benchmarks" / "results" / "lesson5_sample_spread.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lesson5_spread-") as folder:
        folder = pathlib.Path(folder)
        # before utils.paths is imported: it reads them once
        os.environ.setdefault("COURSE_DATA_DIR", str(folder / "data"))
        os.environ.setdefault("COURSE_MODELS_DIR", str(folder / "models"))
        from utils import lessons, paths

        run_folders = paths.MODELS / LESSON.stem / "runs"
        results = []
        for number in range(1, args.runs + 1):
            before = set(run_folders.glob("*")) if run_folders.exists() else set()
            load = [round(value, 2) for value in os.getloadavg()]
            speed = network_speed(folder / f"network_speed_{number}.json")
            started = datetime.datetime.now().isoformat(timespec="seconds")
            print(f"=== run {number} of {args.runs} (load average {load}; network alone {speed} images/s)", flush=True)
            result = lessons.run(LESSON, out_dir=folder / "lessons", html=False, progress=False)
            new = sorted(set(run_folders.glob("*")) - before) if run_folders.exists() else []
            metrics = json.loads((new[-1] / "metrics.json").read_text()) if new else {}
            entry = {"run": number, "date": started, "load_average_before": load,
                     "network_images_per_second_before": speed, "status": result.status,
                     "lesson_seconds": round(result.seconds, 1), "error": result.error,
                     **{key: metrics.get(key) for key in KEPT}, "headline": result.headline}
            entry["seconds"] = round(entry["seconds"], 1) if entry["seconds"] is not None else None
            results.append(entry)
            print(f"{result.status} in {result.seconds:.0f} s: {result.headline or result.error}", flush=True)

    report = {
        "benchmark": "benchmarks/lesson5_sample_spread.py",
        "command": "python " + " ".join(["benchmarks/lesson5_sample_spread.py"] + list(argv or sys.argv[1:])),
        "what": "lesson 5 in sample mode with its default parameters (SEED 0, at most SAMPLE_EPOCHS 20 epochs or "
                "SAMPLE_TRAIN_MINUTES 1.0 of training), run several times in a row through utils.lessons.run on "
                "the drawn stand-in; per run, what its metrics.json recorded: epochs trained, training seconds, "
                "the threshold chosen on the validation images and the held-out precision, recall and accuracy "
                "at it; load_average_before is os.getloadavg() (1, 5, 15 minutes) just before the run; "
                "network_images_per_second_before is what `python " + " ".join(SPEED) + "` measured just before "
                "it (the command of benchmarks/results/cpu_lesson5_network.json: the network alone, no augmentation)",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_end": [round(value, 2) for value in os.getloadavg()]},
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(entry["status"] == "ok" for entry in results) else 1


if __name__ == "__main__":
    sys.exit(main())
