"""Where the kit keeps things: one place, so no notebook hard-codes a path.

Relative paths given to a lesson (for example `DATA_DIR = "data/dogscats"`)
are resolved against the kit's root folder, so a lesson finds its data whether
it runs in JupyterLab, under `make lessons` or from the tests.
"""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# The tests and benchmarks point COURSE_DATA_DIR and COURSE_MODELS_DIR elsewhere,
# so that they never write into a learner's data/ or models/.
DATA = pathlib.Path(os.environ.get("COURSE_DATA_DIR") or ROOT / "data")
MODELS = pathlib.Path(os.environ.get("COURSE_MODELS_DIR") or ROOT / "models")
BUILD = ROOT / "build"


def resolve(path):
    """Turns a path from a lesson's parameters into an absolute path.

    Args:
        path: a string or path; `~` is expanded, and a relative path is taken
            relative to the kit's root folder, except that `data/...` and
            `models/...` go to `DATA` and `MODELS` (which COURSE_DATA_DIR and
            COURSE_MODELS_DIR move, so that tests and benchmarks never read
            or write a learner's folders).

    Returns:
        An absolute `pathlib.Path`.
    """
    path = pathlib.Path(path).expanduser()
    if path.is_absolute():
        return path
    if path.parts[:1] == ("data",):
        return DATA.joinpath(*path.parts[1:])
    if path.parts[:1] == ("models",):
        return MODELS.joinpath(*path.parts[1:])
    return ROOT / path


def model_dir(lesson):
    """Returns (and creates) `models/<lesson>/`, where a lesson saves its work.

    Args:
        lesson: the lesson's short name, for example "03_cnn_from_scratch".
    """
    folder = MODELS / lesson
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_text(path, text):
    """Writes `text` to `path` all or nothing: a hidden `.part` file first, then renamed over it.

    A later run trusts what it finds (metrics, indexes, notebooks, caches'
    markers): an interrupted or failed write must leave the old file, never
    half a new one.
    """
    path = pathlib.Path(path)
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
