"""One folder per training run, so that no run ever replaces another (lessons 3 to 5).

Each run of a training lesson writes into its own folder::

    models/03_cnn_from_scratch/
        runs/20261201-142310-full/     model.keras, metrics.json, training logs, ..., finished.json
        runs/20261201-150102-sample/
        runs.json                      which run is the latest, and which full run is the best
        metrics.json                   a copy of the latest full run's metrics.json

A sample (or smoke) run never becomes the best run, and nothing in an earlier
run's folder is ever written again. `best_model` is what `utils.predict` and
later lessons load: the best full run's model when there is one.

`runs.json` is only an index: each finished run's own folder keeps its
record (`finished.json`: its score, what the score is, whether it trained on
the stand-in, when it finished). A damaged or missing index is worked out
again from those records; a damaged one is first moved aside
(`runs.json.damaged-<time>`), never deleted.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import sys

from utils import paths

INDEX = "runs.json"
MODEL_FILE = "model.keras"
RECORD = "finished.json"  # what `finish` writes in the run's own folder
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
    are always found; a sample run leaves that copy alone. The run's own
    folder gets `finished.json`, its record, from which a damaged `runs.json`
    is rebuilt.

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
    record = {"mode": run.mode, "score": float(score), "score_name": score_name, "stand_in": bool(stand_in),
              "finished": datetime.datetime.now().isoformat(timespec="microseconds")}
    paths.write_text(run.folder / RECORD, json.dumps(record, indent=1) + "\n")  # the index can be rebuilt from it
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
    """The lesson's index, never trusted blindly.

    A missing index is worked out again from the run folders. A damaged one
    (not JSON, or a field of the wrong kind) is moved aside to
    `runs.json.damaged-<time>`, worked out again and saved, with a note.
    """
    path = lesson_folder(lesson) / INDEX
    try:
        text = path.read_text()
    except FileNotFoundError:
        return _rebuilt_index(lesson)
    except OSError as error:  # a folder, unreadable, ...: damaged too
        problem = f"unreadable: {error.strerror or error}"
    else:
        try:
            index = json.loads(text)
        except ValueError as error:
            problem = "empty" if not text.strip() else f"not JSON: {error}"
        else:
            problem = _index_problem(index)
            if problem is None:
                return index
    index = _rebuilt_index(lesson)
    best = index["best"].split("/", 1)[1] if "best" in index else "none yet"
    runs_folder = lesson_folder(lesson) / "runs"
    try:
        aside = _move_aside(path)
    except FileNotFoundError:  # another command moved it a moment ago: it saves the rebuilt index
        return index
    except OSError as error:
        print(f"note: {path} was damaged ({problem}) and could not be moved aside ({error.strerror or error}); "
              f"using an index rebuilt from the run folders in {runs_folder} for now: the best full run is {best}. "
              f"Make {path.parent} writable to save it.", file=sys.stderr)
        return index
    try:
        paths.write_text(path, json.dumps(index, indent=1) + "\n")
    except OSError:  # not saved: the next command rebuilds it again from the same records
        pass
    print(f"note: {path} was damaged ({problem}); moved it to {aside.name} and rebuilt the index from the run "
          f"folders in {runs_folder}: the best full run is {best}.", file=sys.stderr)
    return index


def _index_problem(index):
    """What is wrong with a parsed `runs.json`, or None."""
    if not isinstance(index, dict):
        return f"a JSON {type(index).__name__}, not an index of runs"
    for key in ("latest", "best"):
        value = index.get(key)
        if value is not None and not _is_run(value):
            return f"its {key!r} is {value!r:.60}, not a run folder"
    value = index.get("best_score")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"its 'best_score' is {value!r:.60}, not a number"
    if not isinstance(index.get("best_by", ""), (str, type(None))):
        return f"its 'best_by' is {index['best_by']!r:.60}, not the name of a score"
    return None


def _is_run(relative):
    """True for `runs/<folder name>`, as `finish` writes it."""
    parts = pathlib.PurePosixPath(relative).parts if isinstance(relative, str) else ()
    return len(parts) == 2 and parts[0] == "runs" and parts[1] not in (".", "..")


def _move_aside(path):
    """Renames a damaged `path` to `<name>.damaged-<time>` (never over an earlier one); returns the new path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 100):
        aside = path.with_name(f"{path.name}.damaged-{stamp}" + ("" if attempt == 1 else f"-{attempt}"))
        if not aside.exists() and not aside.is_symlink():
            os.rename(path, aside)
            return aside
    raise FileExistsError(f"too many damaged copies of {path.name} in {path.parent}")


def _record(folder):
    """What `finish` wrote in a run's folder (a dict), or None."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _finished_at(folder, record):
    """When a run finished: its record says, else (a run finished by an older kit) its metrics.json's time."""
    try:
        return datetime.datetime.fromisoformat(record["finished"]).timestamp()
    except (TypeError, KeyError, ValueError):
        try:
            return (folder / "metrics.json").stat().st_mtime
        except OSError:
            return 0.0


def _rebuilt_index(lesson):
    """The index `finish` would have written, worked out again from the finished runs' own folders.

    A finished run has `finished.json` (or, finished by a kit before it, the
    `metrics.json` a lesson writes just before `finish`). As in `finish`, the
    latest is the last one finished, and the best is the full run, not on the
    stand-in, with the highest score; a full run of an older kit (no score
    recorded) is the best only while no full run has a recorded score.
    """
    finished = []
    runs_folder = lesson_folder(lesson) / "runs"
    for folder in sorted(runs_folder.iterdir()) if runs_folder.is_dir() else ():
        record = _record(folder) if folder.is_dir() else None
        if record is None and not (folder / "metrics.json").is_file():
            continue  # not a run, or one that never finished
        finished.append((_finished_at(folder, record), folder.name, record or {}))
    index = {}
    for _, name, record in sorted(finished):
        index["latest"] = f"runs/{name}"
        score = record.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
        best_score = index.get("best_score")
        if (_mode(name) == "full" and not record.get("stand_in", False)
                and ("best" not in index or best_score is None or (score is not None and score > best_score))):
            by = record.get("score_name")
            index.update(best=f"runs/{name}", best_score=score, best_by=by if isinstance(by, str) else None)
    return index


def _mode(folder_name):
    return "full" if folder_name.split("-")[2:3] == ["full"] else "sample"


def _run_from_index(lesson, relative):
    if not relative:
        return None
    folder = lesson_folder(lesson) / relative
    if not folder.is_dir():
        return None
    return Run(lesson, folder, _mode(folder.name))


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
