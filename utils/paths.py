"""Where the kit keeps things, so that no notebook hard-codes a path (lesson 1 onwards)."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# Tests and benchmarks move these with COURSE_DATA_DIR and COURSE_MODELS_DIR, away from a learner's folders.
DATA = pathlib.Path(os.environ.get("COURSE_DATA_DIR") or ROOT / "data")
MODELS = pathlib.Path(os.environ.get("COURSE_MODELS_DIR") or ROOT / "models")
BUILD = ROOT / "build"


def resolve(path):
    """Turns a path from a lesson's parameters (a string or path; `~` is expanded) into an absolute `pathlib.Path`.

    A relative path is taken from the kit's root folder, except that `data/...` and `models/...` go to `DATA` and
    `MODELS`. An empty path raises ValueError (it would mean the kit's own folder).
    """
    if not str(path).strip():
        raise ValueError(f"an empty path ({str(path)!r}): give the folder or file to use, for example data/dogscats.")
    path = pathlib.Path(path).expanduser()
    if path.is_absolute():
        return path
    if path.parts[:1] == ("data",):
        return DATA.joinpath(*path.parts[1:])
    if path.parts[:1] == ("models",):
        return MODELS.joinpath(*path.parts[1:])
    return ROOT / path


def model_dir(lesson):
    """Returns (and creates) `models/<lesson>/`, where a lesson (named as in "03_cnn_from_scratch") saves its work."""
    folder = MODELS / lesson
    folder.mkdir(parents=True, exist_ok=True)
    return folder
