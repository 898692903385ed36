"""Lesson 6 on real photos: export and TensorFlow Lite conversions of a lesson-3 model, measured.

Runs `notebooks/06_ship_it.ipynb` top to bottom with `SAMPLE = False` on the
validation photos of a folder lesson 3 trained on, shipping the given model,
and writes what the lesson measured (per format: MB, accuracy, agreement with
the Keras model, milliseconds per photo), with the test accuracy lesson 3
recorded for that model in the `metrics.json` beside it, to
`benchmarks/results/ship_it.json`:

    .venv/bin/python benchmarks/real_pets.py --data ../shared/data/dogscats-dev --photos 1760 --keep
    .venv/bin/python benchmarks/ship_it.py --model /tmp/real_pets-*/models/03_cnn_from_scratch/runs/*/model.keras \\
        --data /tmp/real_pets-*/photos --layouts /tmp/real_pets-*/data

`--data` and `--layouts` must be the photos and the organized copy the model
trained with (`real_pets.py --keep` leaves both), so that the validation
photos are the ones it never trained on. Nothing is written into the kit's
data/ or models/: the run goes to a temporary folder.
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "06_ship_it.ipynb"


def eight_bit_instructions():
    """The processor's fast 8-bit dot-product instructions that LiteRT's XNNPACK can use for int8 models, as Linux lists
    them in /proc/cpuinfo (x86: AVX-512 VNNI, AVX-VNNI, AMX; ARM: dot product, i8mm), or None off Linux."""
    try:
        flags = set(pathlib.Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return None
    return sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a lesson-3 model.keras")
    parser.add_argument("--data", required=True, help="the photos the model trained with (DATA_DIR)")
    parser.add_argument("--layouts", required=True, help="the COURSE_DATA_DIR holding their organized layout")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ship_it.json"))
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="ship_it-"))
    os.environ["COURSE_DATA_DIR"] = str(pathlib.Path(args.layouts).resolve())  # the lesson's kernel inherits these
    os.environ["COURSE_MODELS_DIR"] = str(work / "models")
    sys.path.insert(0, str(ROOT))
    from utils import lessons

    parameters = {"SAMPLE": False, "MODEL": str(pathlib.Path(args.model).resolve()),
                  "DATA_DIR": str(pathlib.Path(args.data).resolve())}
    result = lessons.run(LESSON, parameters, out_dir=work / "out", html=False)
    if result.status != "ok":
        sys.exit(f"error: the lesson failed: {result.error}")
    metrics = json.loads(next((work / "models" / "06_ship_it" / "runs").glob("*/metrics.json")).read_text())
    trained = pathlib.Path(args.model).resolve().parent / "metrics.json"  # what lesson 3 recorded for this model
    trained = json.loads(trained.read_text()) if trained.exists() else {}
    record = {
        "benchmark": "benchmarks/ship_it.py",
        "command": "benchmarks/ship_it.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "model_trained": {key: trained.get(key) for key in ("dataset", "photos", "splits", "image_size")}
                         | {"test_accuracy": trained.get("improved", {}).get("test_accuracy"),
                            "written": trained.get("written")},
        "lesson_seconds": round(result.seconds, 1),
        "valid_photos": metrics["valid_photos"],
        "saved_model_max_difference": metrics["saved_model_max_difference"],
        "formats": metrics["formats"], "keras_ms": metrics.get("keras_ms"),
        "cpus": os.cpu_count(), "cpu_8bit_instructions": eight_bit_instructions(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    pathlib.Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
