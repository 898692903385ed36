"""Smoke-run times of lessons in two checkouts of the kit, side by side on one machine in one session.

Runs each lesson in smoke mode (the mode `make test` runs) through the lesson
runner of each checkout in turn, alternating which goes first, and writes the
seconds per run and the ratio of the medians:

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/smoke_times.py --before /tmp/before --repeats 2 \\
        notebooks/03_cnn_from_scratch.ipynb notebooks/04_vgg16_finetune.ipynb

Each run is a separate process with that checkout first on PYTHONPATH, so its
notebook imports its own `utils`; data and models go to a temporary folder
(offline: the drawn stand-ins), drawn by one untimed run of each lesson
first. Run it with nothing else busy on the machine.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def git_commit(root):
    return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def smoke_seconds(root, notebook, scratch):
    """Seconds the lesson runner of checkout `root` reports for one smoke run of `notebook`."""
    env = dict(os.environ, PYTHONPATH=str(root), COURSE_DATA_DIR=str(scratch / "data"),
               COURSE_MODELS_DIR=str(scratch / "models"), TF_CPP_MIN_LOG_LEVEL="2")
    out = scratch / f"out-{time.monotonic_ns()}"
    code = ("import json, sys; from utils import lessons; "
            f"r = lessons.run({str(root / notebook)!r}, out_dir={str(out)!r}, smoke=True, html=False, progress=False); "
            "print(json.dumps({'status': r.status, 'seconds': r.seconds, 'error': r.error}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != "ok":
        sys.exit(f"error: {notebook} failed in {root}: {result['error']}")
    return result["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path, help="lessons, as paths inside a checkout")
    parser.add_argument("--before", type=pathlib.Path, required=True, help="the other checkout (git worktree)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "smoke_times.json")
    args = parser.parse_args(argv)
    checkouts = {"before": args.before.resolve(), "after": ROOT}
    seconds = {str(notebook): {name: [] for name in checkouts} for notebook in args.notebooks}
    with tempfile.TemporaryDirectory() as scratch:
        for notebook in args.notebooks:
            smoke_seconds(ROOT, notebook, pathlib.Path(scratch))  # not timed: draws the stand-ins both then reuse
            for repeat in range(args.repeats):
                order = list(checkouts) if repeat % 2 == 0 else list(checkouts)[::-1]
                for name in order:
                    seconds[str(notebook)][name].append(smoke_seconds(checkouts[name], notebook, pathlib.Path(scratch)))
                    print(f"{notebook.stem} {name}: {seconds[str(notebook)][name][-1]:.1f} s", flush=True)
    lessons = {notebook: {**runs, "median_before": statistics.median(runs["before"]),
                          "median_after": statistics.median(runs["after"]),
                          "ratio_after_to_before": statistics.median(runs["after"]) / statistics.median(runs["before"])}
               for notebook, runs in seconds.items()}
    record = {"benchmark": "benchmarks/smoke_times.py", "command": " ".join(["benchmarks/smoke_times.py", *sys.argv[1:]]),
              "before": git_commit(checkouts["before"]), "after": git_commit(ROOT), "repeats": args.repeats,
              "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}", "lessons": lessons,
              "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for notebook, row in lessons.items():
        print(f"{pathlib.Path(notebook).stem}: before {row['median_before']:.1f} s, after {row['median_after']:.1f} s, "
              f"ratio {row['ratio_after_to_before']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
