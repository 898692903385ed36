"""How fast lesson 3's networks train on this CPU: oneDNN on and off, and three augmentations.

Each configuration runs in its own Python process (TF_ENABLE_ONEDNN_OPTS is
read when TensorFlow starts), trains the lesson's own network (the code is
taken from the notebook's cells, so it is the lesson's, not a copy) on the
same real photos through `pipeline.image_dataset`, and reports training
photos per second over timed epochs after a warm-up epoch. Results go to
`benchmarks/results/cpu_speed.json`, with each configuration's time next to
the first's.

    .venv/bin/python benchmarks/cpu_speed.py --data ../shared/data/dogscats-dev --photos 800
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "03_cnn_from_scratch.ipynb"
CONFIGS = [  # (name, oneDNN, network, augmentation)
    ("improved, oneDNN off", "0", "improved", "lesson"),
    ("improved, oneDNN on", "1", "improved", "lesson"),
    ("baseline, oneDNN off", "0", "baseline", "lesson"),
    ("baseline, oneDNN on", "1", "baseline", "lesson"),
    ("improved, oneDNN on, no augmentation", "1", "improved", "none"),
]


def lesson_namespace():
    """Runs the notebook cells that define the networks and the augmentation; returns their names."""
    import nbformat

    notebook = nbformat.read(LESSON, as_version=4)
    namespace = {}
    exec("import keras\nimport numpy as np\nimport tensorflow as tf", namespace)
    for cell in notebook.cells:
        if cell.cell_type == "code" and ("def make_" in cell.source or cell.source.startswith("augment = ")):
            exec(cell.source.split("\n\n\n")[0] if "def make_" in cell.source else cell.source, namespace)
    parameters = next(cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    exec(parameters, namespace)
    return namespace


def measure(folder, network, augmentation, epochs):
    """One configuration, in this process: photos per second over `epochs` timed epochs."""
    import keras
    import numpy as np
    import tensorflow as tf

    from utils import pipeline

    lesson = lesson_namespace()
    size, batch_size = lesson["IMAGE_SIZE"], lesson["BATCH_SIZE"]
    augment = {"lesson": lesson["augment"] if network == "improved" else keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomZoom(0.2, fill_mode="reflect")]),
        "none": None}[augmentation]
    train_ds = pipeline.image_dataset(folder, size, batch_size, augment=augment, seed=0)
    model = lesson[f"make_{network}"](size)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    model.fit(train_ds, epochs=1, verbose=0)  # warm-up: decoding, tracing, the cache
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    return {"photos_per_second": train_ds.num_images * epochs / seconds, "seconds_per_epoch": seconds / epochs,
            "photos": train_ds.num_images, "image_size": size, "batch_size": batch_size,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tensorflow": tf.__version__,
            "parameters": int(np.sum([np.prod(w.shape) for w in model.weights]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="labelled cat and dog photos, any layout the kit knows")
    parser.add_argument("--photos", type=int, default=800, help="training photos, half of each class")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per configuration")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_speed.json"))
    parser.add_argument("--one", nargs=3, metavar=("FOLDER", "NETWORK", "AUGMENTATION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # the child process
        print(json.dumps(measure(args.one[0], args.one[1], args.one[2], args.epochs)))
        return
    if not args.data:
        parser.error("--data FOLDER is required")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_pets

    chosen, layout = real_pets.pick_photos(pathlib.Path(args.data).expanduser().resolve(), args.photos, 0)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cpu_speed-"))
    for name, paths in chosen.items():
        (work / name).mkdir()
        for path in paths:
            os.symlink(path, work / name / path.name)
    results = []
    for name, onednn, network, augmentation in CONFIGS:
        environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
        child = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--one", str(work),
                                network, augmentation], capture_output=True, text=True, env=environment, cwd=ROOT)
        if child.returncode:
            sys.exit(f"error: {name} failed:\n{child.stderr[-2000:]}")
        result = {"configuration": name, **json.loads(child.stdout.strip().splitlines()[-1])}
        results.append(result)
        print(f"{name:<48} {result['photos_per_second']:7.1f} photos/s  {result['seconds_per_epoch']:6.1f} s/epoch",
              flush=True)
    for result in results:  # ratios within this one run, on this one machine
        same_network = next(r for r in results if r["configuration"].split(",")[0] == result["configuration"].split(",")[0])
        result["speed_vs_first_of_its_network"] = round(result["photos_per_second"] / same_network["photos_per_second"], 2)
    record = {"benchmark": "benchmarks/cpu_speed.py",
              "command": "benchmarks/cpu_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "source": {"data": args.data, "layout": layout}, "cpus": os.cpu_count(),
              "load_average_after": [round(v, 2) for v in os.getloadavg()],
              "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": results}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
