"""How long each lesson takes in sample mode, run as `make lessons` runs it.

Runs every lesson in notebooks/ top to bottom with its default parameters
(sample mode) through the kit's own runner, `utils.lessons.run`, exactly as
`make lessons` does (executed copy and HTML), and writes the seconds the
runner measured per lesson and in all to `benchmarks/results/lesson_times.json`,
with each lesson's peak memory (`peak_memory_gb`: the resident memory of the
runner, its kernel and whatever the kernel starts, summed, sampled every 0.2 s)
and the size of the run folder it left in models/ (`run_folder_mb`):

    .venv/bin/python benchmarks/lesson_times.py

Each lesson's introduction states its sample-mode time on a 2-core CPU;
`tests/test_notebooks.py` checks each statement is within 2x of this file.
Run it with nothing else busy on the machine. The lessons use what is in
data/ (offline: the drawn stand-ins and scikit-learn's digits) and write
their runs into models/ as `make lessons` would; the executed copies go to a
temporary folder.

`-p NAME VALUE` sets a lesson parameter, as the runner's own option does; with
`--out` elsewhere it times a variant, for example lesson 4 at the image size
its ImageNet weights would use in sample mode (random weights cost the same):

    .venv/bin/python benchmarks/lesson_times.py notebooks/04_vgg16_finetune.ipynb \\
        -p OFFLINE_IMAGE_SIZE 96 --out benchmarks/results/lesson4_sample_96.json
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class PeakMemory:
    """The largest resident memory of this process and all its children together while the block runs: `peak` in
    bytes, `gb` rounded (benchmarks/lesson2_memory.py uses it too), sampled every `interval` seconds."""

    def __init__(self, interval=0.2):
        self.interval = interval

    def __enter__(self):
        import psutil

        self.peak, self.done = 0, threading.Event()

        def sample():
            me = psutil.Process()
            while not self.done.wait(self.interval):
                total = 0
                for process in [me, *me.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:  # it ended meanwhile
                        pass
                self.peak = max(self.peak, total)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.gb = round(self.peak / 1e9, 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                        help="re-time only these lessons, keeping the others' figures in --out (default: all)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "lesson_times.json")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a lesson parameter (as `python -m utils.lessons run -p`)")
    args = parser.parse_args(argv)
    if args.p and args.out == parser.get_default("out"):  # a variant's times would replace the defaults' in it
        parser.error("-p times a variant: give --out FILE, so that lesson_times.json keeps the default times")

    from utils import lessons, paths

    parameters = {name: lessons.parse_value(value) for name, value in args.p} or None

    results = json.loads(args.out.read_text())["lessons"] if args.notebooks and args.out.exists() else {}
    started = time.perf_counter()  # from here on as `make lessons` spends it: executed copies and pages included
    with tempfile.TemporaryDirectory(prefix="lesson_times-") as folder:
        for path in args.notebooks or lessons.all_lessons():
            print(f"=== {path.name}", flush=True)
            with PeakMemory() as memory:
                result = lessons.run(path, parameters, out_dir=pathlib.Path(folder), progress=False)
            run_folders = sorted((paths.MODELS / path.stem / "runs").glob("*"), key=lambda f: f.stat().st_mtime)
            size = sum(f.stat().st_size for f in run_folders[-1].rglob("*") if f.is_file()) if run_folders else 0
            results[path.stem] = {"status": result.status, "seconds": round(result.seconds, 1),
                                  "peak_memory_gb": memory.gb, "run_folder_mb": round(size / 1e6, 1),
                                  "headline": result.headline, "error": result.error,
                                  "date": datetime.datetime.now().isoformat(timespec="seconds")}
            print(f"{result.status} in {result.seconds:.0f} s, at most {memory.gb} GB: "
                  f"{result.headline or result.error}", flush=True)
    wall_seconds = round(time.perf_counter() - started, 1)
    report = {
        "benchmark": "benchmarks/lesson_times.py",
        "command": "python " + " ".join(["benchmarks/lesson_times.py"] + list(argv or sys.argv[1:])),
        "what": "every lesson in sample mode with its default parameters (but `parameters`), through utils.lessons.run "
                "(as `make lessons`), seconds measured by the runner; total_seconds is their sum; wall_seconds: from "
                "the first lesson's start to the last lesson's HTML page written, each executed copy and page "
                "included; peak_memory_gb: the runner's, its kernel's and their children's resident memory together, "
                "at its highest",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "parameters": parameters or {},
        "lessons": dict(sorted(results.items())),
        "total_seconds": round(sum(entry["seconds"] for entry in results.values()), 1),
        "wall_seconds": wall_seconds if not args.notebooks else None,  # all lessons run by this command, end to end
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    in_all = f", {wall_seconds / 60:.1f} minutes in all" if not args.notebooks else ""  # else: some kept from --out
    print(f"total {report['total_seconds'] / 60:.1f} minutes of lessons{in_all}; wrote {args.out}")
    return 0 if all(entry["status"] == "ok" for entry in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
