"""The lesson runner (`make lessons`, the notebook tests): executes lesson notebooks top to bottom, headless.

    python -m utils.lessons run notebooks/03_cnn_from_scratch.ipynb -p SAMPLE False -p EPOCHS 30
    python -m utils.lessons clean [NOTEBOOK...]  # strips outputs before a commit (default: every lesson)

Parameters are injected after the cell tagged `parameters` (papermill). Each run writes the executed notebook
and its HTML to --out, replacing only copies the runner wrote there, and prints each lesson's headline figure.
A run writes both when it ends (a failed one too, with the error in place): until then, and after Ctrl-C, the
copies there stay those of the last run that ended.
"""

import argparse
import ast
import dataclasses
import os
import pathlib
import re
import sys
import time

from utils import cli, copies, interrupts, paths  # nbformat and papermill load where used: Ctrl-C then is one line too

HEADLINE_MIMETYPE = "application/vnd.cnn-course.headline+json"
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
DIED = ("stopped: the kernel died, with no Python error; on Linux that is most often the system killing it when "
        "memory ran out (docs/troubleshooting.md, \"The kernel died\", says what to do)")
INTERRUPTED = ("nothing in notebooks/ was changed, and each executed copy and its HTML are still those of the last "
               "run that ended; run the same command again: the lesson runs again from the top, and training "
               "resumes from its last finished epoch")


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
    """Shows a lesson's headline figure (one short line) and marks it for the runner's table."""
    from IPython import display

    display.display({"text/markdown": f"**Headline:** {text}", HEADLINE_MIMETYPE: {"headline": text}}, raw=True)


def all_lessons():
    """Returns the lesson notebooks in `notebooks/`, in lesson order: named like `03_cnn_from_scratch.ipynb`, not
    copies such as `03_cnn_from_scratch-Copy1.ipynb` (JupyterLab's) or `….from-gpubox.ipynb` (gpubox sync's)."""
    return sorted(path for path in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                  if re.fullmatch(r"[0-9]{2}_[a-z0-9_]+", path.stem))


def read_notebook(path):
    """Reads a notebook, with an error that says what is wrong with the path."""
    path = pathlib.Path(path)
    if not path.exists():
        raise LessonError(f"{path} does not exist: give the path of a lesson's .ipynb file (the lessons are in "
                          f"{paths.NOTEBOOKS}).")
    if path.suffix != ".ipynb" or not path.is_file():  # a folder named like one, a .py file
        raise LessonError(f"{path} is not a notebook file: give the path of a lesson's .ipynb file (the lessons are "
                          f"in {paths.NOTEBOOKS}).")
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds for a bad file
        raise LessonError(f"{path} is not a readable notebook ({cli.reason(str(error))}): put a good copy back (`git "
                          "checkout` for the kit's own; JupyterLab keeps one in .ipynb_checkpoints/), or give another."
                          ) from error


def tagged(notebook, tag):
    """The index of the first cell tagged `tag`, or -1."""
    return next((at for at, cell in enumerate(notebook.cells)
                 if tag in cell.get("metadata", {}).get("tags", [])), -1)


def declared_defaults(notebook):
    """`{name: default}` for the names the cell tagged `parameters` assigns (`...` for an expression)."""
    at = tagged(notebook, "parameters")
    defaults = {}
    for node in ast.parse(notebook.cells[at].source if at >= 0 else "").body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = ...
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defaults.update({target.id: value for target in targets if isinstance(target, ast.Name)})
    return defaults


def check_type(name, value, default):
    """`value` for parameter `name`, converted to the type of its default (None fits any), or a LessonError."""
    def refuse(kind, example):
        return LessonError(f"-p {name} {value!r}: {name} is {kind} (its default is {default!r}); "
                           f"give for example -p {name} {example}.")

    if value is None or default is None or default is ...:  # None means "not set" for any parameter
        return value
    if isinstance(default, bool):
        word = str(value).strip().lower()  # True and False too
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise refuse("True or False", "False")
        return word in TRUE_WORDS
    if isinstance(default, (int, float)):
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                whole and isinstance(value, float) and not value.is_integer()):
            raise refuse("a whole number" if whole else "a number", default)
        return type(default)(value)
    return str(value) if isinstance(default, str) else value


def parse_value(text):
    """Reads a `-p NAME VALUE` value: a Python literal if it is one, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def lesson_parameters(path, notebook, overrides, smoke):
    """Merges smoke parameters (from the notebook's metadata) with overrides, checked."""
    parameters = {**(notebook.metadata.get("course", {}).get("smoke", {}) if smoke else {}), **overrides}
    defaults = declared_defaults(notebook)
    unknown = sorted(set(parameters) - set(defaults))
    if unknown:
        raise LessonError(f"{path.name} has no parameter {', '.join(unknown)}; "
                          f"its parameters cell declares: {', '.join(sorted(defaults)) or 'nothing'}.")
    return {name: check_type(name, value, defaults[name]) for name, value in parameters.items()}


def check_out_dir(out_dir, notebooks=(), html=True):
    """Refuses an output folder the executed copies of `notebooks` cannot go to, before anything runs: a LessonError,
    or `copies.NotReplaceable` for a file there that is not the runner's to replace."""
    given = pathlib.Path(out_dir)
    blocker = next((folder for folder in (given, *given.parents) if folder.exists() and not folder.is_dir()), None)
    if blocker is not None:  # --out itself, or one of its parents
        raise LessonError(f"--out {given}: {blocker} is a file; give a folder for the executed copies.")
    out_dir = given.resolve()
    if out_dir == paths.NOTEBOOKS or paths.NOTEBOOKS in out_dir.parents or any(
            pathlib.Path(path).resolve().parent == out_dir for path in notebooks):
        raise LessonError(f"--out {out_dir} would overwrite the lesson notebooks themselves with executed "
                          f"copies: choose another folder (the default is {paths.BUILD / 'lessons'}).")
    for lesson in map(pathlib.Path, notebooks):
        for target in [given / lesson.name, (given / lesson.name).with_suffix(".html")][:2 if html else 1]:
            copies.check_replaceable(target, shown(lesson))


def shown(path):
    """`path` as a learner would type it here: relative to the current folder when it is inside it."""
    path, here = pathlib.Path(path), pathlib.Path.cwd()
    return path.resolve().relative_to(here) if path.resolve().is_relative_to(here) else path


def run(path, parameters=None, out_dir=paths.BUILD / "lessons", smoke=False, html=True, progress=True):
    """Executes one lesson notebook top to bottom into `out_dir`, and renders it to HTML if `html`.

    `parameters` overrides the notebook's defaults (for example {"EPOCHS": 1}); `smoke` also applies its smoke
    parameters (metadata `course.smoke`). Returns a `LessonResult`: a failing cell gives status "failed" and an
    error naming the cell as numbered in the lesson, not an exception; a bad path, parameter or `out_dir` raises a
    LessonError (or `copies.NotReplaceable`) before anything runs.
    """
    import nbclient
    import nbformat
    import papermill

    path = pathlib.Path(path).resolve()
    notebook = read_notebook(path)
    parameters = lesson_parameters(path, notebook, parameters or {}, smoke)
    check_out_dir(out_dir, [path], html=html)
    result = LessonResult(path, "ok", 0.0, output=pathlib.Path(out_dir) / path.name, started=time.time())
    output = result.output.resolve()  # absolute in papermill's record (see `copies.is_executed_copy`)
    output.parent.mkdir(parents=True, exist_ok=True)
    # papermill saves after every cell: into a file of this run's own until the run ends, so that a stopped run
    # leaves the last executed copy and its page as they were, and the two still match
    running = output.with_name(f".{output.stem}.running-{os.getpid()}.ipynb")
    copies.remove_stale_running(output)
    os.environ["COURSE_HEADLESS"] = "1"  # the kernel inherits it: no widgets, nobody to drag them (lesson 5)
    start = time.perf_counter()
    try:
        try:
            papermill.execute_notebook(str(path), str(running), parameters=parameters, kernel_name="python3",
                                       engine_name=interrupts.engine(), progress_bar=progress, cwd=str(path.parent))
        except (papermill.PapermillExecutionError, nbclient.exceptions.DeadKernelError) as failure:  # see the report
            cells = nbformat.read(running, as_version=4).cells
            started = [i for i, cell in enumerate(cells) if cell.metadata.get("papermill", {}).get("start_time")]
            index = getattr(failure, "cell_index", started[-1])  # a dead kernel: the last cell papermill started
            source = getattr(failure, "source", None) or cells[index].source
            first_line = next((line.strip() for line in source.splitlines() if line.strip()), "")
            if parameters and tagged(notebook, "injected-parameters") < 0 and index > tagged(notebook, "parameters"):
                index -= 1  # less the cell papermill injects after the parameters cell, if any
            result.status = "failed"
            why = f"raised {failure.ename}: {cli.reason(failure.evalue)}" if hasattr(failure, "ename") else DIED
            result.error = f"cell {index} (`{first_line}`) {why}"
        result.seconds = time.perf_counter() - start
        executed = copies.write(output, html, executed_into=running)
    finally:
        running.unlink(missing_ok=True)
    result.headline = next((output["data"][HEADLINE_MIMETYPE]["headline"]
                            for cell in executed.cells for output in cell.get("outputs", [])
                            if HEADLINE_MIMETYPE in output.get("data", {})), "")
    result.html = result.output.with_suffix(".html") if html else None
    return result


def format_table(results):
    """Formats results as the table `make lessons` prints."""
    rows = [("lesson", "status", "seconds", "headline")]
    rows += [(result.notebook.stem, result.status, f"{result.seconds:.0f}", result.headline) for result in results]
    widths = [max(len(row[column]) for row in rows) for column in range(3)] + [0]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "-" * max(len(line) for line in lines), *lines[1:]])


def command(argv):
    """`python -m utils.lessons run|clean ...` (see the module docstring); returns the exit status."""
    # -p NAME=VALUE is refused first: argparse would take the next argument (a notebook) as its value
    for arg, following in zip(argv, [*argv[1:], ""]):
        option = re.fullmatch(r"(?:-p|--parameter=?)(.*)", arg)
        name, equals, value = ((option[1] or following) if option else "").partition("=")
        if equals:
            raise LessonError(f"-p takes a name and a value: write -p {name} {value}, not -p {name}={value}.")
    parser = argparse.ArgumentParser(prog="python -m utils.lessons", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute lessons top to bottom")
    run_parser.add_argument("notebooks", nargs="*", type=cli.notebook,
                            help="lesson notebooks (default: every lesson in notebooks/)")
    run_parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                            help="set a parameter, e.g. -p EPOCHS 3")
    run_parser.add_argument("--out", type=cli.folder, default=paths.BUILD / "lessons",
                            help="folder for executed notebooks and HTML (default build/lessons)")
    run_parser.add_argument("--smoke", action="store_true",
                            help="tiny data and few epochs (each lesson's course.smoke settings): checks that it runs")
    run_parser.add_argument("--no-html", action="store_true", help="skip the HTML rendering")
    clean_parser = commands.add_parser("clean", help="strip outputs before committing")
    clean_parser.add_argument("notebooks", nargs="*", type=cli.notebook, help="default: every lesson in notebooks/")
    args = parser.parse_args(argv)
    if args.command == "clean":
        for path in args.notebooks or all_lessons():
            read_notebook(path)  # a clear error for a path that is not a notebook
            print(f"{'cleaned' if copies.clean(path) else 'already clean'}: {path}")
        return 0
    overrides = {name: parse_value(value) for name, value in args.parameter}
    notebooks = args.notebooks or all_lessons()
    for path in notebooks:  # check every path and parameter before spending minutes on the first lesson
        lesson_parameters(path, read_notebook(path), overrides, args.smoke)
    check_out_dir(args.out, notebooks, html=not args.no_html)
    results = []
    for path in notebooks:
        print(f"\n=== {path.name}", flush=True)
        results.append(run(path, overrides, args.out, smoke=args.smoke, html=not args.no_html))
        if results[-1].error:
            print(f"FAILED: {results[-1].error}\n  see {results[-1].output}", file=sys.stderr)
        if args.no_html and results[-1].output.with_suffix(".html").exists():
            print(f"note: {results[-1].output.with_suffix('.html')} was left as it was (--no-html writes no page)")
    print(f"\n{format_table(results)}\n\nExecuted notebooks and HTML are in {args.out}")
    return 0 if all(result.status == "ok" for result in results) else 1


def main(argv=None):
    """Runs the command line: a bad path, parameter or --out ends in one line and exit status 2."""
    return cli.run(command, argv, expected=(LessonError, ValueError, OSError), interrupted=INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
