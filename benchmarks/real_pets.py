"""Lesson 3 on real photos: both networks, the lesson's defaults, test accuracy and time.

Takes N labelled photos (half cats, half dogs) from a folder in any layout the
kit recognizes, lays them out as Kaggle's flat download in a temporary
folder, runs `notebooks/03_cnn_from_scratch.ipynb` on them top to bottom with
`SAMPLE = False` (as a learner would with `python -m utils.lessons run`),
and writes what the lesson measured to `benchmarks/results/real_pets.json`:

    .venv/bin/python benchmarks/real_pets.py --data ../shared/data/dogscats-dev --photos 1760
    .venv/bin/python benchmarks/real_pets.py --data data/dogscats --photos 1760 --minutes 15
    .venv/bin/python benchmarks/real_pets.py --data ../shared/data/dogscats-dev --photos 1760 --sample \
        --out benchmarks/results/real_pets_sample.json

Nothing is written into the kit's data/ or models/: the layout, the models
and the executed notebook go to a temporary folder (kept with --keep).
"""

import argparse
import json
import os
import pathlib
import random
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "03_cnn_from_scratch.ipynb"


def pick_photos(data, photos, seed):
    """`{class: [paths]}` with photos // 2 photos of each class, chosen at random."""
    from utils import layouts

    found = layouts.find(data)
    if found is None:
        sys.exit(f"error: no labelled photos found in {data}. Looked for: " + "; ".join(layouts.LOOKED_FOR))
    groups = [found.classes, found.valid or {}, found.test or {}]
    classes = {name: sorted({path for group in groups for path in group.get(name, [])})
               for name in found.classes}
    if sorted(classes) != ["cats", "dogs"]:
        sys.exit(f"error: {data} holds the classes {sorted(classes)}; this benchmark needs cats and dogs.")
    per_class = photos // 2
    for name, paths in classes.items():
        if len(paths) < per_class:
            sys.exit(f"error: {data} has {len(paths)} {name}; --photos {photos} needs {per_class} of each.")
        random.Random(f"{seed}-{name}").shuffle(paths)
    return {name: paths[:per_class] for name, paths in classes.items()}, found.kind


def flat_copy(chosen, folder):
    """Lays the chosen photos out as Kaggle's flat train/cat.N.jpg (hard links, else copies)."""
    train = folder / "train"
    train.mkdir(parents=True)
    for name, paths in chosen.items():
        for number, path in enumerate(paths):
            target = train / f"{name[:-1]}.{number}{path.suffix.lower()}"
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="labelled cat and dog photos, any layout the kit knows")
    parser.add_argument("--photos", type=int, default=1760, help="photos to use, half of each class")
    parser.add_argument("--minutes", type=float, default=None,
                        help="TRAIN_MINUTES for the lesson (default: the lesson's own)")
    parser.add_argument("--seed", type=int, default=0, help="which photos are picked")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_pets.json"))
    parser.add_argument("--sample", action="store_true",
                        help="run the lesson in sample mode (SAMPLE = True) instead, to time it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.photos < 20 or args.photos % 2:
        parser.error(f"--photos {args.photos}: give an even number, 20 or more (half cats, half dogs)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="real_pets-"))
    # before any utils module is imported: utils.paths reads them once (the lesson's kernel inherits them too)
    os.environ["COURSE_DATA_DIR"] = str(work / "data")
    os.environ["COURSE_MODELS_DIR"] = str(work / "models")
    from utils import lessons, runs

    try:
        chosen, layout = pick_photos(pathlib.Path(args.data).expanduser().resolve(), args.photos, args.seed)
    except BaseException:  # a wrong --data: nothing of this run is left behind
        shutil.rmtree(work)
        raise
    photos = flat_copy(chosen, work / "photos")
    parameters = {"DATA_DIR": str(photos), "SAMPLE": args.sample}
    if args.minutes is not None:
        parameters["TRAIN_MINUTES"] = args.minutes
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = lessons.run(LESSON, parameters, out_dir=work / "out", html=False)
    lesson_seconds = time.perf_counter() - start
    if result.status != "ok":
        sys.exit(f"error: the lesson failed: {result.error} (see {result.output})")
    metrics = json.loads((runs.latest("03_cnn_from_scratch").folder / "metrics.json").read_text())
    networks = {name: {key: metrics[name][key] for key in (
        "test_accuracy", "best_val_accuracy", "final_val_accuracy", "final_train_accuracy", "epochs",
        "train_seconds", "images_per_second",
        "recall", "parameters")} for name in ("baseline", "improved")}
    record = {
        "benchmark": "benchmarks/real_pets.py",
        "command": "benchmarks/real_pets.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "source": {"data": args.data, "layout": layout, "photos": args.photos, "seed": args.seed},
        "sample": args.sample, "dataset": metrics["dataset"], "photos": metrics["photos"], "splits": metrics["splits"],
        "image_size": metrics["image_size"], "train_minutes": metrics["train_minutes"],
        "networks": networks,
        "improved_minus_baseline_points": round(100 * (networks["improved"]["test_accuracy"]
                                                        - networks["baseline"]["test_accuracy"]), 1),
        "lesson_seconds": round(lesson_seconds, 1), "headline": result.headline,
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()],
                    "device": metrics["device"], "versions": metrics["versions"]},
        "written": metrics["written"],
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    from utils import cli

    raise SystemExit(cli.run(main))
