"""Lessons and their executed copies: which notebook files the lesson runner may write, and how.

`utils.lessons` writes each executed lesson (and its HTML page) into an output folder, and may replace a
file there only if it is a copy the runner wrote at that very place, unedited and writable; anything else
is someone's work and is left alone (`check_replaceable`). A run is executed into a file of its own
(papermill with `interrupts.engine`, which ends it quietly on Ctrl-C), and its copy and page are written when it
ends (`write`). `clean` turns a notebook back into a lesson as committed: no outputs, no execution counts
(`python -m utils.lessons clean`).
"""

import hashlib
import html as html_text
import json
import os
import pathlib

from utils import interrupts, paths, safely

KEPT_CELL_METADATA = ("tags", "slideshow")  # what `clean` keeps (slideshow: see utils.slides.mark_slides)
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "course")
MARK = "course_kit"  # an executed copy's metadata: {"executed_copy": True, "written_to", "cells_sha256"}
HTML_MARK = '<meta name="course-kit-executed-copy" content="{}"/>'  # in its pages, with the page's own path


class NotReplaceable(ValueError):
    """A file the runner would replace is not its own to replace; the message says what to do."""


def check_replaceable(target, lesson):
    """Refuses when the file at `target` exists and is not an executed copy of `lesson` that may go.

    Args:
        target: the executed copy (.ipynb) or page (.html) a run of `lesson` would write.
        lesson: the lesson notebook's path as the learner would type it; the refusal names the command that
            writes its copies to another folder instead (`make lessons` always writes to build/lessons).

    Raises:
        NotReplaceable: it is not a copy the runner wrote there (see `is_executed_copy`), it is read-only,
            or its cells were edited since the runner wrote it.
    """
    target, name = pathlib.Path(target), pathlib.Path(lesson).name
    if not target.exists() and not target.is_symlink():
        return
    if not is_executed_copy(target):
        raise NotReplaceable(f"{target} is not an executed copy the lesson runner wrote there, and running "
                             f"{name} would replace it: it was left as it is; move that file away, or run the lesson "
                             f"into another folder DIR: `.venv/bin/python -m utils.lessons run --out DIR {lesson}`.")
    if safely.is_read_only(target):
        raise NotReplaceable(f"{target} is read-only, and running {name} would replace it: it was left as "
                             "it is; make it writable (chmod u+w) to let the runner replace it, or run the lesson "
                             f"into another folder DIR: `.venv/bin/python -m utils.lessons run --out DIR {lesson}`.")
    recorded = metadata(target, MARK).get("cells_sha256")
    if recorded is not None and recorded != cells_fingerprint(json.loads(target.read_text("utf-8"))):
        raise NotReplaceable(f"{target} was changed after the lesson runner wrote it (its cells differ), "
                             "and running it again would replace your changes: it was left as it is; move that "
                             "file away, or run the lesson into another folder DIR: `.venv/bin/python -m "
                             f"utils.lessons run --out DIR {lesson}`.")


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


def write(output, html, executed_into=None):
    """Writes the executed copy of a lesson at `output`, marked as the runner's with its cells' fingerprint,
    and a standalone HTML page of it next to it if `html`, marked too (see `is_executed_copy`), from the
    notebook papermill executed the lesson into (`executed_into`, default `output` itself). Consecutive text
    outputs are merged, each progress bar kept as its final line. Returns the notebook.

    Both files are made first, then each is replaced whole (`safely.write_text`), one right after the other,
    with Ctrl-C held off in between: the copy and its page never come from two different runs.
    """
    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    output = pathlib.Path(output)
    # a progress bar's updates (text ending in "\r") become its last line, in the notebook and its page alike
    executed, _ = CoalesceStreamsPreprocessor().preprocess(
        nbformat.read(executed_into or output, as_version=4), {})
    if isinstance(executed.metadata.get("papermill"), dict):
        executed.metadata.papermill["output_path"] = str(output)  # where the copy is, not where it was made
    executed.metadata[MARK] = {"executed_copy": True, "written_to": str(output),
                               "cells_sha256": cells_fingerprint(executed)}
    texts = {output: nbformat.writes(executed) + "\n"}
    if html:
        from nbconvert import HTMLExporter

        page, _ = HTMLExporter().from_notebook_node(executed)
        at = page.find("\n", page.find("<head>")) + 1  # after the <head> line, which sets the charset
        mark = HTML_MARK.format(html_text.escape(str(output.with_suffix(".html").resolve())))
        texts[output.with_suffix(".html")] = page[:at] + mark + "\n" + page[at:]
    with interrupts.held():
        for path, text in texts.items():
            safely.write_text(path, text)
    return executed


def remove_stale_running(output):
    """Deletes the runner's unfinished copies of `output` (`.<name>.running-<pid>.ipynb`) whose run is gone.

    A run writes into such a file until it ends (see `lessons.run`); one killed outright (SIGKILL, a power
    cut) leaves it behind. A copy whose process still exists is another run's, and is left alone.
    """
    for stale in output.parent.glob(f".{output.stem}.running-*.ipynb"):
        try:
            os.kill(int(stale.stem.rsplit("-", 1)[-1]), 0)
        except (ValueError, ProcessLookupError):
            stale.unlink(missing_ok=True)
        except PermissionError:  # another user's run
            pass


def clean(path):
    """Strips outputs, execution counts and stray metadata from a notebook in place; True if it changed."""
    import nbformat

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
