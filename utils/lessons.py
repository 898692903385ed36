"""The lesson runner: executes notebooks top to bottom, headless.

`make lessons` and the notebook tests use it; instructors use it to run a
lesson with other parameters::

    python -m utils.lessons run notebooks/03_cnn_from_scratch.ipynb \\
        -p SAMPLE False -p EPOCHS 30 -p DATA_DIR /path/to/dogscats

Parameters are injected after the notebook's cell tagged `parameters`
(papermill does the work), so a lesson runs the same code in a smoke test, in
sample mode and in a full run. Each run writes the executed notebook and an
HTML rendering of it to the output folder, and the runner prints a table of
lesson, status, seconds and the lesson's headline figure (see `headline`).
The runner marks the copies it writes, and replaces only those: a file of the
same name that it did not write there (a learner's own) is left alone, and
nothing runs.

`python -m utils.lessons clean NOTEBOOK...` strips outputs before a commit.
"""

import argparse
import ast
import dataclasses
import hashlib
import html as html_text
import json
import pathlib
import sys
import time

import nbformat

from utils import paths

HEADLINE_MIMETYPE = "application/vnd.cnn-course.headline+json"
KEPT_CELL_METADATA = ("tags",)
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "course")
COPY_METADATA = "course_kit"  # an executed copy's mark: {"executed_copy": True, "written_to": its path}


class LessonError(Exception):
    """A lesson could not be run as asked (bad path, unknown parameter)."""


@dataclasses.dataclass
class LessonResult:
    """What one run of a lesson produced."""

    notebook: pathlib.Path
    status: str  # "ok" or "failed"
    seconds: float
    headline: str = ""
    error: str = ""
    output: pathlib.Path | None = None
    html: pathlib.Path | None = None
    started: float = 0.0  # time.time() when the run began


def headline(text):
    """Shows a lesson's headline figure and marks it for the runner's table.

    Call it once near the end of a lesson, for example
    `lessons.headline(f"validation accuracy {accuracy:.1%}")`.

    Args:
        text: one short line.
    """
    from IPython import display

    display.display(
        {"text/markdown": f"**Headline:** {text}", HEADLINE_MIMETYPE: {"headline": text}},
        raw=True,
    )


def all_lessons():
    """Returns the lesson notebooks in `notebooks/`, in lesson order."""
    return sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def read_notebook(path):
    """Reads a notebook, with an error that says what is wrong with the path."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise LessonError(f"{path} is a folder, not a notebook: pass a lesson's .ipynb file "
                          f"(the lessons are in {paths.NOTEBOOKS}).")
    if path.suffix != ".ipynb":
        raise LessonError(f"{path} is not a notebook: lesson files end in .ipynb "
                          f"(try `ls {paths.NOTEBOOKS}`).")
    if not path.is_file():
        raise LessonError(f"{path} does not exist (the lessons are in {paths.NOTEBOOKS}).")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds for a bad file
        raise LessonError(f"{path} is not a readable notebook: {error}") from error


def declared_defaults(notebook):
    """Returns `{name: default}` for the names assigned in the cell tagged `parameters`.

    A default that is not a plain literal (an expression) is returned as `...`.
    """
    cells = [cell for cell in notebook.cells
             if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    defaults = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = ...
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    defaults[target.id] = value
    return defaults


def declared_parameters(notebook):
    """Returns the names assigned in the notebook's cell tagged `parameters`."""
    return set(declared_defaults(notebook))


TRUE_WORDS, FALSE_WORDS = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def check_type(name, value, default):
    """`value` for parameter `name`, converted to the type of its default, or a LessonError.

    Booleans accept true/false, yes/no, on/off and 1/0 in any case; whole
    numbers refuse fractions and words; a number may be given where the
    default is a decimal; text parameters take anything; None is taken for
    any parameter, and a default of None (or an expression) takes any value.
    """
    def refuse(kind, example):
        return LessonError(f"-p {name} {value!r}: {name} is {kind} (its default is {default!r}); "
                           f"give for example -p {name} {example}.")

    if value is None or default is None or default is ...:  # None means "not set" for any parameter
        return value
    if isinstance(default, bool):
        word = str(value).strip().lower()
        if isinstance(value, bool) or word in TRUE_WORDS | FALSE_WORDS:
            return value if isinstance(value, bool) else word in TRUE_WORDS
        raise refuse("True or False", "False")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise refuse("a whole number", default)
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise refuse("a number", default)
    if isinstance(default, str):
        return value if isinstance(value, str) else str(value)
    if isinstance(default, (tuple, list)):
        if isinstance(value, (tuple, list)):
            return type(default)(value)
        raise refuse(f"a {type(default).__name__}", repr(default).replace(" ", ""))
    return value


def parse_value(text):
    """Reads a `-p NAME VALUE` value: a Python literal if it is one, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def lesson_parameters(path, notebook, overrides, smoke):
    """Merges smoke parameters (from the notebook's metadata) with overrides, checked."""
    parameters = dict(notebook.metadata.get("course", {}).get("smoke", {})) if smoke else {}
    parameters.update(overrides)
    defaults = declared_defaults(notebook)
    unknown = sorted(set(parameters) - set(defaults))
    if unknown:
        raise LessonError(
            f"{path.name} has no parameter {', '.join(unknown)}; "
            f"its parameters cell declares: {', '.join(sorted(defaults)) or 'nothing'}.")
    return {name: check_type(name, value, defaults[name]) for name, value in parameters.items()}


def check_out_dir(out_dir, notebooks=(), html=True):
    """Refuses an output folder the executed copies of `notebooks` cannot go to, before anything runs.

    Raises:
        LessonError: `out_dir` is a file (or inside one); it is `notebooks/` (or
            inside it), or holds one of `notebooks`; or it holds a file an
            executed copy would replace that is not one the runner wrote there
            (see `is_executed_copy`).
    """
    given = pathlib.Path(out_dir)
    if given.exists() and not given.is_dir():
        raise LessonError(f"--out {given} is a file; give a folder for the executed copies.")
    ancestor = next((parent for parent in given.parents if parent.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise LessonError(f"--out {given} is inside {ancestor}, which is a file; "
                          f"give a folder for the executed copies.")
    out_dir = given.resolve()
    if out_dir == paths.NOTEBOOKS or paths.NOTEBOOKS in out_dir.parents or any(
            pathlib.Path(path).resolve().parent == out_dir for path in notebooks):
        raise LessonError(f"--out {out_dir} would overwrite the lesson notebooks themselves with executed "
                          f"copies: choose another folder (the default is {paths.BUILD / 'lessons'}).")
    for path in notebooks:
        copy = given / pathlib.Path(path).name
        for target in (copy, copy.with_suffix(".html")) if html else (copy,):
            if (target.exists() or target.is_symlink()) and not is_executed_copy(target):
                raise LessonError(
                    f"{target} is not an executed copy the lesson runner wrote there, and running "
                    f"{pathlib.Path(path).name} would replace it: it was left as it is; choose another "
                    f"--out folder (or move that file away).")
            if target.is_file() and paths.is_read_only(target):
                raise LessonError(f"{target} is read-only, and running {pathlib.Path(path).name} would replace "
                                  "it: it was left as it is; choose another --out folder, or make it writable "
                                  "(chmod u+w) to let the runner replace it.")
            if target.suffix == ".ipynb" and target.is_file() and edited_since_written(target):
                raise LessonError(f"{target} was changed after the lesson runner wrote it (its cells differ), "
                                  "and running it again would replace your changes: it was left as it is; "
                                  "choose another --out folder, or move that file away.")


def html_mark(html_path):
    """The line that marks an HTML page as the runner's executed copy at `html_path`."""
    where = html_text.escape(str(pathlib.Path(html_path).resolve()))
    return f'<meta name="course-kit-executed-copy" content="{where}"/>'


def notebook_metadata(path):
    """The notebook-level metadata of the .ipynb at `path`, or {} if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            metadata = json.load(file).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def written_by_papermill_to(path):
    """Whether papermill's record in the notebook at `path` says it executed the lesson into that very file.

    Copies written before the runner marked them, and copies of a run stopped
    half-way (papermill saves after every cell; the runner marks the copy at the
    end), carry only this record.
    """
    record = notebook_metadata(path).get("papermill", {})
    output, source = record.get("output_path"), record.get("input_path")
    if not isinstance(output, str) or not isinstance(source, str) or pathlib.Path(source).name != path.name:
        return False
    output = pathlib.Path(output)
    places = [output] if output.is_absolute() else [pathlib.Path.cwd() / output, paths.ROOT / output]
    return any(place.resolve() == path.resolve() for place in places)


def is_executed_copy(path):
    """Whether `path` is an executed copy the runner wrote at that very place, so a new run may replace it.

    An .ipynb carries `metadata.course_kit` naming where it was written (or
    papermill's record, see `written_by_papermill_to`); an .html carries the
    line `html_mark` makes, or, from before the runner marked pages, sits
    next to an unmarked executed .ipynb. A copy a learner moved or copied
    elsewhere no longer counts as the runner's.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        return False
    if path.suffix == ".html":
        with open(path, encoding="utf-8", errors="replace") as file:
            if html_mark(path) in file.read(4096):
                return True
        sibling = path.with_suffix(".ipynb")
        return (sibling.is_file() and COPY_METADATA not in notebook_metadata(sibling)
                and written_by_papermill_to(sibling))
    mark = notebook_metadata(path).get(COPY_METADATA, {})
    if isinstance(mark, dict) and mark.get("executed_copy") is True:
        return mark.get("written_to") == str(path.resolve())
    return written_by_papermill_to(path)


def find_headline(notebook):
    """Returns the text the lesson passed to `headline`, or ""."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if HEADLINE_MIMETYPE in data:
                return data[HEADLINE_MIMETYPE]["headline"]
    return ""


def cells_fingerprint(notebook):
    """A fingerprint of what a learner would edit in a notebook: each cell's type and source."""
    cells = [[cell.get("cell_type"), "".join(cell.get("source", ""))] for cell in notebook.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def edited_since_written(path):
    """Whether the runner's executed copy at `path` has had its cells changed since it was written."""
    try:
        with open(path, encoding="utf-8") as file:
            notebook = json.load(file)
    except (OSError, ValueError):
        return False
    mark = notebook.get("metadata", {}).get(COPY_METADATA, {}) if isinstance(notebook, dict) else {}
    recorded = mark.get("cells_sha256") if isinstance(mark, dict) else None
    return recorded is not None and recorded != cells_fingerprint(notebook)


def mark_executed_copy(output):
    """Marks the executed notebook at `output` as the runner's copy written there (see `is_executed_copy`)."""
    executed = nbformat.read(output, as_version=4)
    executed.metadata[COPY_METADATA] = {"executed_copy": True, "written_to": str(output.resolve()),
                                        "cells_sha256": cells_fingerprint(executed)}
    paths.write_text(output, nbformat.writes(executed) + "\n")
    return executed


def write_html(notebook_path, html_path):
    """Renders an executed notebook to a standalone HTML page, marked as the runner's (see `html_mark`)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook_path, as_version=4))
    head = body.find("<head>")
    at = body.find("\n", head) + 1 if head >= 0 else 0  # after the <head> line, which sets the charset
    paths.write_text(html_path, body[:at] + html_mark(html_path) + "\n" + body[at:])


def run(path, parameters=None, out_dir=paths.BUILD / "lessons", smoke=False,
        html=True, progress=True):
    """Executes one lesson notebook top to bottom.

    Args:
        path: the notebook.
        parameters: dict of parameter overrides, for example {"EPOCHS": 1}.
        out_dir: where the executed notebook (and its HTML) are written.
        smoke: also apply the notebook's smoke parameters (tiny data, one
            epoch), stored in its metadata under `course.smoke`.
        html: also write an HTML rendering.
        progress: show a progress bar over the cells.

    Returns:
        A `LessonResult`; a failing cell gives status "failed" and an error
        naming the cell, not an exception.

    Raises:
        LessonError: the path is not a notebook, a parameter is unknown, or
            `out_dir` is a file, or the copies would replace the lesson
            notebooks or files the runner did not write (see `check_out_dir`).
    """
    import papermill

    path = pathlib.Path(path).resolve()
    notebook = read_notebook(path)
    parameters = lesson_parameters(path, notebook, parameters or {}, smoke)
    check_out_dir(out_dir, [path], html=html)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir.resolve() / path.name  # absolute in papermill's record (see `written_by_papermill_to`)
    started, start = time.time(), time.perf_counter()
    status, error = "ok", ""
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name="python3",
            progress_bar=progress, cwd=str(path.parent))
    except papermill.PapermillExecutionError as failure:
        status = "failed"
        first_line = next((line for line in failure.source.splitlines() if line.strip()), "")
        error = (f"cell {source_index(output, failure.cell_index)} (`{first_line.strip()}`) raised "
                 f"{failure.ename}: {failure.evalue}")
    seconds = time.perf_counter() - start
    executed = mark_executed_copy(output)
    result = LessonResult(path, status, seconds, find_headline(executed), error, out_dir / path.name,
                          started=started)
    if html:
        result.html = result.output.with_suffix(".html")
        write_html(output, result.html)
    return result


def source_index(executed_path, index):
    """The index, in the lesson notebook itself, of cell `index` of its executed copy.

    Papermill adds a cell after the parameters cell; cells after it are one
    further down in the executed copy than in the lesson.
    """
    cells = nbformat.read(executed_path, as_version=4).cells
    injected = [i for i, cell in enumerate(cells)
                if "injected-parameters" in cell.get("metadata", {}).get("tags", [])]
    return index - 1 if injected and injected[0] < index else index


def format_table(results):
    """Formats results as the table `make lessons` prints."""
    rows = [("lesson", "status", "seconds", "headline")]
    rows += [(r.notebook.stem, r.status, f"{r.seconds:.0f}", r.headline) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
             for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(line.rstrip() for line in lines)


def clean(path):
    """Strips outputs, execution counts and stray metadata from a notebook in place.

    Returns:
        True when the file changed.
    """
    path = pathlib.Path(path)
    notebook = read_notebook(path)
    before = nbformat.writes(notebook)
    for cell in notebook.cells:
        cell.metadata = {key: value for key, value in cell.metadata.items()
                         if key in KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata = {key: value for key, value in notebook.metadata.items()
                         if key in KEPT_NOTEBOOK_METADATA}
    after = nbformat.writes(notebook)
    if after != before:
        paths.write_text(path, after + "\n")  # a learner's notebook: never half-written
    return after != before


def check_parameter_names(argv):
    """Refuses `-p NAME=VALUE`: argparse would take the next argument (a notebook) as its value.

    Raises:
        LessonError: a -p (or --parameter) name holds "=".
    """
    for at, arg in enumerate(argv):
        if arg in ("-p", "--parameter"):
            name = argv[at + 1] if at + 1 < len(argv) else ""
        elif arg.startswith("--parameter="):
            name = arg.partition("=")[2]
        elif arg.startswith("-p") and not arg.startswith("--"):
            name = arg[2:]
        else:
            continue
        if "=" in name:
            name, _, value = name.partition("=")
            raise LessonError(f"-p takes a name and a value: write -p {name} {value}, not -p {name}={value}.")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        try:  # before argparse, which would take the next argument as the value
            check_parameter_names(argv[1:])
        except LessonError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    parser = argparse.ArgumentParser(prog="python -m utils.lessons", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute lessons top to bottom")
    run_parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                            help="lesson notebooks (default: every lesson in notebooks/)")
    run_parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                            metavar=("NAME", "VALUE"), help="set a parameter, e.g. -p EPOCHS 3")
    run_parser.add_argument("--out", type=pathlib.Path, default=paths.BUILD / "lessons",
                            help="folder for executed notebooks and HTML (default build/lessons)")
    run_parser.add_argument("--smoke", action="store_true",
                            help="tiny data and one epoch: checks that a lesson runs")
    run_parser.add_argument("--no-html", action="store_true", help="skip the HTML rendering")
    clean_parser = commands.add_parser("clean", help="strip outputs before committing")
    clean_parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)

    if args.command == "clean":
        try:
            for path in args.notebooks:
                print(f"{'cleaned' if clean(path) else 'already clean'}: {path}")
        except LessonError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0

    overrides = {name: parse_value(value) for name, value in args.parameter}
    notebooks = args.notebooks or all_lessons()
    try:  # check every path and parameter before spending minutes on the first lesson
        for path in notebooks:
            lesson_parameters(path, read_notebook(path), overrides, args.smoke)
        check_out_dir(args.out, notebooks, html=not args.no_html)
    except LessonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = []
    for path in notebooks:
        print(f"\n=== {path.name}", flush=True)
        result = run(path, overrides, args.out, smoke=args.smoke, html=not args.no_html)
        results.append(result)
        if result.error:
            print(f"FAILED: {result.error}\n  see {result.output}", file=sys.stderr)
    print("\n" + format_table(results))
    print(f"\nExecuted notebooks and HTML are in {args.out}")
    return 0 if all(result.status == "ok" for result in results) else 1


if __name__ == "__main__":
    from utils import cli

    sys.exit(cli.run(main, expected=(LessonError, ValueError, OSError),
                     interrupted="nothing in notebooks/ was changed, and an executed copy may be "
                                 "incomplete; run the command again to start over"))
