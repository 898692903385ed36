"""One folder per training run, so that no run ever replaces another (lessons 3 to 5).

Each run of a training lesson writes into its own folder::

    models/03_cnn_from_scratch/
        runs/20261201-142310-full/     model.keras, metrics.json, training logs, ...
        runs/20261201-150102-sample/
        runs.json                      which run is the latest, and which full run is the best
        metrics.json                   a copy of the latest full run's metrics.json

A sample (or smoke) run never becomes the best run, and nothing in an earlier
run's folder is ever written again. `best_model` is what `utils.predict` and
later lessons load: the best full run's model when there is one.
"""

import dataclasses
import datetime
import json
import pathlib

from utils import paths

INDEX = "runs.json"
MODEL_FILE = "model.keras"
MODES = ("sample", "full")


@dataclasses.dataclass
class Run:
    """A training run's folder.

    Attributes:
        lesson: the lesson's short name, e.g. "03_cnn_from_scratch".
        folder: the run's own folder, `models/<lesson>/runs/<time>-<mode>/`.
        mode: "sample" or "full".
    """

    lesson: str
    folder: pathlib.Path
    mode: str

    @property
    def name(self):
        return self.folder.name

    @property
    def model_path(self):
        """Where the run keeps the lesson's final model."""
        return self.folder / MODEL_FILE

    def metrics(self):
        """The run's `metrics.json` as a dict ({} when it has none yet)."""
        path = self.folder / "metrics.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}


def lesson_folder(lesson):
    return paths.MODELS / lesson


def start(lesson, sample):
    """Creates a new, empty folder for a run of `lesson`.

    Args:
        lesson: the lesson's short name, e.g. "03_cnn_from_scratch".
        sample: True for a sample (or smoke) run, False for a full run.

    Returns:
        A `Run`.
    """
    mode = MODES[not sample]
    runs_folder = lesson_folder(lesson) / "runs"
    runs_folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 100):
        folder = runs_folder / (f"{stamp}-{mode}" if attempt == 1 else f"{stamp}-{mode}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return Run(lesson, folder, mode)
    raise RuntimeError(f"could not create a new run folder in {runs_folder}")


def finish(run, score, score_name, stand_in=False):
    """Records a finished run: it becomes the latest, and the best if it is the best full run.

    A full run's `metrics.json` is also copied to the lesson's folder
    (`models/<lesson>/metrics.json`), where the figures of the latest full run
    are always found; a sample run leaves that copy alone.

    Args:
        run: the `Run`.
        score: the run's headline figure (higher is better), e.g. its test accuracy.
        score_name: what the score is, e.g. "val_accuracy". Choose a
            validation figure: picking the best run is a choice, and the
            test photos stay out of every choice.
        stand_in: True when the run trained on drawn stand-in data: like a
            sample run, it never becomes the best.

    Returns:
        The index, `{"latest": ..., "best": ..., ...}`, as written to `runs.json`.
    """
    index = _read_index(run.lesson)
    index["latest"] = f"runs/{run.name}"
    best = _run_from_index(run.lesson, index.get("best"))
    best_score = index.get("best_score")
    if run.mode == "full" and not stand_in and (best is None or best_score is None or score > best_score):
        index.update(best=f"runs/{run.name}", best_score=float(score), best_by=score_name)
    paths.write_text(lesson_folder(run.lesson) / INDEX, json.dumps(index, indent=1) + "\n")
    metrics = run.folder / "metrics.json"
    if run.mode == "full" and not stand_in and metrics.is_file():
        paths.write_text(lesson_folder(run.lesson) / "metrics.json", metrics.read_text())
    return index


def _read_index(lesson):
    try:
        index = json.loads((lesson_folder(lesson) / INDEX).read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _run_from_index(lesson, relative):
    if not relative:
        return None
    folder = lesson_folder(lesson) / relative
    if not folder.is_dir():
        return None
    mode = "full" if folder.name.split("-")[2:3] == ["full"] else "sample"
    return Run(lesson, folder, mode)


def best(lesson):
    """The best full run of `lesson`, or None."""
    return _run_from_index(lesson, _read_index(lesson).get("best"))


def latest(lesson):
    """The latest finished run of `lesson`, or None."""
    return _run_from_index(lesson, _read_index(lesson).get("latest"))


def best_model(lesson):
    """The model file later lessons and `utils.predict` should load, and which run it is.

    Args:
        lesson: the lesson's short name.

    Returns:
        `(path, description)`: the best full run's `model.keras`, else the
        latest run's; `(None, reason)` when the lesson has no finished run.
    """
    for run, which in ((best(lesson), "the best full run"), (latest(lesson), "the latest run")):
        if run is not None and run.model_path.is_file():
            return run.model_path, f"{which}, {run.name}" + (" (sample mode)" if run.mode == "sample" else "")
    legacy = lesson_folder(lesson) / "best.keras"  # saved by kits before run folders
    if legacy.is_file():
        return legacy, "a model saved by an earlier version of the kit"
    return None, f"no finished run of {lesson} in {lesson_folder(lesson)}"
