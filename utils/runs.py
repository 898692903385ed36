"""One folder per training run, so that no run ever replaces another (lessons 2 to 6).

Each run of a training lesson writes into its own folder::

    models/03_cnn_from_scratch/
        runs/20261201-142310-full/     model.keras, metrics.json, training logs, ..., finished.json
        runs/20261201-150102-sample/
        runs.json                      which run is the latest, and which full run is the best
        metrics.json                   a copy of the latest full run's metrics.json (not a stand-in run's)

A sample (or smoke) run never becomes the best run, and nothing in an earlier
run's folder is ever written again (`check_unfinished`), but in a run that was
interrupted before it finished. `start(..., resume_key=PARAMETERS)` records
the parameters in the new folder (`started.json`), and a later `start` with
the same lesson, mode and parameters goes on in the latest such unfinished
folder, where `training.fit` finds its backup and resumes. A finished run is
never resumed, nor a run another live process is still training.
`best_model` is what `utils.predict` and later lessons load: the best full
run's model when there is one.

`runs.json` is only an index: each finished run's own folder keeps its
record (`finished.json`: its score, what the score is, whether it trained on
the stand-in, when it finished). A damaged or missing index is worked out
again from those records; a damaged one is first moved aside
(`runs.json.damaged-<time>`), never deleted.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import sys

from utils import paths, safely  # utils.resume (Keras) loads in `start`: commands that only look stay light

INDEX = "runs.json"
MODEL_FILE = "model.keras"
RECORD = "finished.json"  # what `finish` writes in the run's own folder
AGAIN = ["", *(f"-{attempt}" for attempt in range(2, 100))]  # endings tried in turn: no name is ever reused


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

    def stand_in(self):
        """Whether `finish` recorded that the run trained on stand-in data (False when nothing says so)."""
        try:
            return json.loads((self.folder / RECORD).read_text()).get("stand_in") is True
        except (OSError, ValueError, AttributeError):  # not finished, or its record is not a record
            return False


def lesson_folder(lesson):
    return paths.MODELS / lesson


def start(lesson, sample, resume_key=None):
    """Creates a new, empty folder for a run of `lesson` (e.g. "03_cnn_from_scratch"); returns its `Run`.

    Args:
        lesson: the lesson's short name.
        sample: True for a sample (or smoke) run, False for a full run.
        resume_key: None, or what decides that a run is the same one (the
            lesson's parameters, as a dict for JSON): the latest unfinished
            run of this lesson and mode started with an equal key, and not
            held by another live process, is returned instead of a new
            folder, with a line saying so.
    """
    mode = "sample" if sample else "full"
    runs_folder = lesson_folder(lesson) / "runs"
    runs_folder.mkdir(parents=True, exist_ok=True)
    if resume_key is not None:
        from utils import resume

        resume_key = json.loads(json.dumps(resume_key, sort_keys=True, default=str))
        for folder in sorted(runs_folder.iterdir(), reverse=True):
            if _mode(folder.name) == mode and not (folder / RECORD).exists() and resume.hold(folder, resume_key):
                print(f"resuming run {folder.name}{resume.backed_up_epochs(folder)}")
                return Run(lesson, folder, mode)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for again in AGAIN:
        with contextlib.suppress(FileExistsError):
            (folder := runs_folder / f"{stamp}-{mode}{again}").mkdir()
            if resume_key is not None:
                started = {"mode": mode, "resume_key": resume_key,
                           "started": datetime.datetime.now().isoformat(timespec="seconds")}
                safely.write_text(folder / resume.STARTED, json.dumps(started, indent=1) + "\n")
                resume.hold(folder, resume_key)
            return Run(lesson, folder, mode)
    raise RuntimeError(f"could not create a new run folder in {runs_folder}: run the lesson again in a second")


def check_unfinished(folder):
    """Refuses `folder` when it is (in) a finished run's folder, which is never written again: a cell run twice."""
    for run_folder in (folder, *folder.parents):
        if (run_folder / RECORD).is_file():
            raise ValueError(f"{run_folder.name} is a finished run, whose files are never written again: run the "
                             "cell that starts a run (`runs.start`) again first, then this one, for a new run.")


def finish(run, score, score_name, stand_in=False):
    """Records a finished run: it becomes the latest, and the best if it is the best full run.

    A full run's `metrics.json` is also copied to the lesson's folder
    (`models/<lesson>/metrics.json`), where the figures of the latest full run
    are always found; a sample or stand-in run leaves that copy alone. The run's own
    folder gets `finished.json`, its record, from which a damaged `runs.json`
    is rebuilt.

    Args:
        run: the `Run`.
        score: the run's headline figure (higher is better), e.g. its validation accuracy.
        score_name: what the score is, e.g. "val_accuracy". Choose a
            validation figure: picking the best run is a choice, and the
            test photos stay out of every choice.
        stand_in: True when the run trained on drawn stand-in data: like a
            sample run, it never becomes the best.

    Returns:
        The index, `{"latest": ..., "best": ..., ...}`, as written to `runs.json`.
    """
    check_unfinished(run.folder)
    record = {"mode": run.mode, "score": float(score), "score_name": score_name, "stand_in": bool(stand_in),
              "finished": datetime.datetime.now().isoformat(timespec="microseconds")}
    safely.write_text(run.folder / RECORD, json.dumps(record, indent=1) + "\n")  # the index can be rebuilt from it
    index = _read_index(run.lesson)
    _count(index, run.lesson, run.name, record)
    safely.write_text(lesson_folder(run.lesson) / INDEX, json.dumps(index, indent=1) + "\n")
    metrics = run.folder / "metrics.json"
    if run.mode == "full" and not stand_in and metrics.is_file():
        safely.write_text(lesson_folder(run.lesson) / "metrics.json", metrics.read_text())
    return index


def _count(index, lesson, name, record):
    """Adds a finished run to `index`, given its record: it becomes the latest, and the best when it is a full
    run not on the stand-in and there is no best yet, or the best has no score, or it scores higher."""
    index["latest"] = f"runs/{name}"
    score = record.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    best_score = index.get("best_score")
    if (_mode(name) == "full" and not record.get("stand_in", False)
            and (_run_from_index(lesson, index.get("best")) is None or best_score is None
                 or (score is not None and score > best_score))):
        by = record.get("score_name")
        index.update(best=f"runs/{name}", best_score=score, best_by=by if isinstance(by, str) else None)


def _read_index(lesson):
    """The lesson's index, never trusted blindly: a missing one is worked out again from the run folders, a damaged
    one (not JSON, or a field of the wrong kind) is moved aside to `runs.json.damaged-<time>`, then the same."""
    path = lesson_folder(lesson) / INDEX
    text = b""
    try:
        index = json.loads(text := path.read_bytes())
    except FileNotFoundError:
        return _rebuilt_index(lesson)
    except OSError as error:  # a folder, unreadable, ...: damaged too
        problem = f"unreadable: {error.strerror or error}"
    except ValueError as error:  # not JSON, or not even text
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
    with contextlib.suppress(OSError):  # not saved: the next command rebuilds it again from the same records
        safely.write_text(path, json.dumps(index, indent=1) + "\n")
    print(f"note: {path} was damaged ({problem}); moved it to {aside.name} and rebuilt the index from the run "
          f"folders in {runs_folder}: the best full run is {best}.", file=sys.stderr)
    return index


def _index_problem(index):
    """What is wrong with a parsed `runs.json`, or None."""
    if not isinstance(index, dict):
        return f"a JSON {type(index).__name__}, not an index of runs"
    for key in ("latest", "best"):
        value = index.get(key)  # `runs/<folder name>`, as `finish` writes it
        parts = pathlib.PurePosixPath(value).parts if isinstance(value, str) else ()
        if value is not None and not (len(parts) == 2 and parts[0] == "runs" and parts[1] not in (".", "..")):
            return f"its {key!r} is {value!r:.60}, not a run folder"
    value = index.get("best_score")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"its 'best_score' is {value!r:.60}, not a number"
    if not isinstance(index.get("best_by", ""), (str, type(None))):
        return f"its 'best_by' is {index['best_by']!r:.60}, not the name of a score"
    return None


def _move_aside(path):
    """Renames a damaged `path` to `<name>.damaged-<time>` (never over an earlier one); returns the new path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for again in AGAIN:
        aside = path.with_name(f"{path.name}.damaged-{stamp}{again}")
        if not os.path.lexists(aside):
            os.rename(path, aside)
            return aside
    raise FileExistsError(f"too many damaged copies of {path.name} in {path.parent}: run the lesson again in a second")


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
        metrics = folder / "metrics.json"
        try:
            record = json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            record = None
        if not isinstance(record, dict):
            if not metrics.is_file():
                continue  # not a run, or one that never finished
            record = {}  # finished by an older kit
        try:  # when it finished: its record says, else its metrics.json's time
            when = datetime.datetime.fromisoformat(record["finished"]).timestamp()
        except (TypeError, KeyError, ValueError):
            when = metrics.stat().st_mtime if metrics.exists() else 0.0
        finished.append((when, folder.name, record))
    index = {}
    for _, name, record in sorted(finished):
        _count(index, lesson, name, record)
    return index


def _mode(folder_name):
    return "full" if folder_name.split("-")[2:3] == ["full"] else "sample"


def _run_from_index(lesson, relative):
    folder = lesson_folder(lesson) / relative if relative else None
    return Run(lesson, folder, _mode(folder.name)) if folder and folder.is_dir() else None


def best(lesson):
    """The best full run of `lesson`, or None."""
    return _run_from_index(lesson, _read_index(lesson).get("best"))


def latest(lesson):
    """The latest finished run of `lesson`, or None."""
    return _run_from_index(lesson, _read_index(lesson).get("latest"))


def best_model(lesson):
    """The model file later lessons and `utils.predict` should load, and which run it is.

    Returns `(path, description)`: the best full run's `model.keras`, else the
    latest run's; `(None, reason)` when the lesson has no finished run.
    """
    for run, which in ((best(lesson), "the best full run"), (latest(lesson), "the latest run")):
        if run is not None and run.model_path.is_file():
            drawn = ", a stand-in run: its answers say nothing about real photos" if run.stand_in() else ""
            return run.model_path, f"{which}, {run.name}" + (" (sample mode)" if run.mode == "sample" else "") + drawn
    legacy = lesson_folder(lesson) / "best.keras"  # saved by kits before run folders
    if legacy.is_file():
        return legacy, "a model saved by an earlier version of the kit"
    return None, f"no finished run of {lesson} in {lesson_folder(lesson)}"
