"""Lessons and their executed copies: which notebook files the lesson runner may write, and how.

`utils.lessons` writes each executed lesson (and its HTML page) into an output folder, and may replace a
file there only if it is a copy the runner wrote at that very place, unedited and writable; anything else
is someone's work and is left alone (`check_replaceable`). `clean` turns a notebook back into a lesson
as committed: no outputs, no execution counts (`python -m utils.lessons clean`).
"""

import hashlib
import html as html_text
import json
import pathlib

import nbformat

from utils import paths, safely

KEPT_CELL_METADATA = ("tags", "slideshow")  # what `clean` keeps (slideshow: see utils.slides.mark_slides)
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "course")
MARK = "course_kit"  # an executed copy's metadata: {"executed_copy": True, "written_to", "cells_sha256"}
HTML_MARK = '<meta name="course-kit-executed-copy" content="{}"/>'  # in its pages, with the page's own path


class NotReplaceable(ValueError):
    """A file the runner would replace is not its own to replace; the message says what to do."""


def check_replaceable(target, name):
    """Refuses when the file at `target` exists and is not an executed copy of lesson `name` that may go.

    Raises:
        NotReplaceable: it is not a copy the runner wrote there (see `is_executed_copy`), it is read-only,
            or its cells were edited since the runner wrote it.
    """
    target = pathlib.Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not is_executed_copy(target):
        raise NotReplaceable(f"{target} is not an executed copy the lesson runner wrote there, and running "
                             f"{name} would replace it: it was left as it is; choose another --out folder "
                             "(or move that file away).")
    if safely.is_read_only(target):
        raise NotReplaceable(f"{target} is read-only, and running {name} would replace it: it was left as "
                             "it is; choose another --out folder, or make it writable (chmod u+w) to let "
                             "the runner replace it.")
    recorded = metadata(target, MARK).get("cells_sha256")
    if recorded is not None and recorded != cells_fingerprint(json.loads(target.read_text("utf-8"))):
        raise NotReplaceable(f"{target} was changed after the lesson runner wrote it (its cells differ), "
                             "and running it again would replace your changes: it was left as it is; "
                             "choose another --out folder, or move that file away.")


def metadata(path, key):
    """The dict `key` in the metadata of the .ipynb at `path`, or {} (none there, or not a notebook)."""
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)["metadata"][key]
    except (OSError, ValueError, LookupError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def is_executed_copy(path):
    """Whether `path` is an executed copy the runner wrote at that very place, so a new run may replace it.

    An .ipynb says so in papermill's record, which names the file papermill executed the lesson into: it
    is there from the first cell on (papermill saves after every cell), also in copies from before the
    runner marked them, where a relative path is taken from the current folder or the kit's. An .html
    carries `HTML_MARK` with its path or, from before the runner marked pages, sits next to an unmarked
    executed .ipynb. A copy a learner moved or copied elsewhere no longer counts as the runner's.
    """
    path = pathlib.Path(path)
    if path.suffix == ".html" and path.is_file():
        with open(path, encoding="utf-8", errors="replace") as file:
            if HTML_MARK.format(html_text.escape(str(path.resolve()))) in file.read(4096):
                return True
        path = path.with_suffix(".ipynb")
        if metadata(path, MARK):
            return False
    record = metadata(path, "papermill")
    output, source = record.get("output_path"), record.get("input_path")
    return isinstance(output, str) and isinstance(source, str) and pathlib.Path(source).name == path.name and any(
        (folder / output).resolve() == path.resolve() for folder in (pathlib.Path.cwd(), paths.ROOT))


def cells_fingerprint(notebook):
    """A fingerprint of what a learner would edit in a notebook: each cell's type and source."""
    cells = [[cell.get("cell_type"), "".join(cell.get("source", ""))] for cell in notebook.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def write(output, html):
    """Marks the executed notebook at `output` as the runner's, with its cells' fingerprint, and renders it
    to a standalone HTML page next to it if `html`, marked too (see `is_executed_copy`). Consecutive text
    outputs are merged, each progress bar kept as its final line. Returns the notebook.
    """
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    # a progress bar's updates (text ending in "\r") become its last line, in the notebook and its page alike
    executed, _ = CoalesceStreamsPreprocessor().preprocess(nbformat.read(output, as_version=4), {})
    executed.metadata[MARK] = {"executed_copy": True, "written_to": str(output),
                               "cells_sha256": cells_fingerprint(executed)}
    safely.write_text(output, nbformat.writes(executed) + "\n")
    if html:
        from nbconvert import HTMLExporter

        page, _ = HTMLExporter().from_notebook_node(executed)
        at = page.find("\n", page.find("<head>")) + 1  # after the <head> line, which sets the charset
        mark = HTML_MARK.format(html_text.escape(str(output.with_suffix(".html").resolve())))
        safely.write_text(output.with_suffix(".html"), page[:at] + mark + "\n" + page[at:])
    return executed


def clean(path):
    """Strips outputs, execution counts and stray metadata from a notebook in place; True if it changed."""
    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    for cell in notebook.cells:
        cell.metadata = {key: value for key, value in cell.metadata.items() if key in KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
    notebook.metadata = {key: value for key, value in notebook.metadata.items() if key in KEPT_NOTEBOOK_METADATA}
    after = nbformat.writes(notebook)
    if after != before:
        safely.write_text(path, after + "\n")  # a learner's notebook: never half-written
    return after != before
