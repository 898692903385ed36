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

    Raises:
        ValueError: an empty path (it would mean the kit's own folder).
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
    """Returns (and creates) `models/<lesson>/`, where a lesson saves its work.

    Args:
        lesson: the lesson's short name, for example "03_cnn_from_scratch".
    """
    folder = MODELS / lesson
    folder.mkdir(parents=True, exist_ok=True)
    return folder
