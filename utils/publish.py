"""For instructors: slides, learner copies of the exercises and a course site, made from the lessons.

    python -m utils.publish slides       # build/slides/NN_name.slides.html: a reveal.js deck per lesson
    python -m utils.publish site         # build/site/index.html: every lesson, the teacher's guide, troubleshooting
    python -m utils.publish exercises    # build/exercises/NN_name.ipynb: each lesson without its solutions
    python -m utils.publish mark-slides notebooks/*.ipynb   # the slide structure, into the lessons' metadata

Slides and site show the lessons' figures, so they are made from executed lessons (build/lessons/, written by
`make lessons`); a lesson missing there is run first, in sample mode. Like the learner copies, they leave out the
solutions (and the check cells' verdicts, which ran after them), so the site can go to learners. `utils.slides`
holds the slide structure (`mark_slides`, and `fit_to_slides` for the decks) and the rendering. A learner copy
never replaces a file this command did not write, or one changed since (`keep_reason`).

Tools: nbconvert, already pinned and already rendering each lesson for `make lessons`, makes the slides
(SlidesExporter) and the site (HTMLExporter, with an index page and a navigation bar added here). Jupyter Book 1
would add Sphinx and a dozen packages for the same pages; Jupyter Book 2 (mystmd) needs Node and downloads its
theme at build time, which fails offline. Nothing is fetched when a page is viewed: reveal.js 5 and MathJax 3 (its
SVG output: one file, no fonts) come pinned from the npm registry at `make` time into `.venv/share/course-web/`,
each build copies them into its own `_static/`, and every link is relative, so build/slides/ and build/site/ work
from file:// and from any web server.
"""

import argparse
import html
import pathlib
import re
import sys

import nbformat

from utils import cli, copies, lessons, outputs, paths, safely, slides

GUIDES = [paths.ROOT / "docs" / "teaching.md", paths.ROOT / "docs" / "troubleshooting.md"]


def lesson_cells(path):
    """A fingerprint of a lesson's cells as `mark_slides` leaves them, without papermill's injected cell."""
    notebook = slides.mark_slides(nbformat.read(path, as_version=4))
    notebook.cells = [cell for cell in notebook.cells if "injected-parameters" not in cell.metadata.get("tags", [])]
    return copies.cells_fingerprint(notebook)


def executed(executed_dir, lesson_paths=None):
    """[(lesson, executed copy)] for each lesson; one missing from `executed_dir` is run there first, in sample mode."""
    pairs = []
    for lesson in lesson_paths or lessons.all_lessons():
        done = pathlib.Path(executed_dir) / lesson.name
        if copies.metadata(done, "papermill").get("exception"):
            raise slides.PublishError(f"{done} is a run of {lesson.name} that failed: see the error in it, fix the "
                                      f"lesson, then run `python -m utils.lessons run {lesson}` and the same "
                                      "command again.")
        if not copies.metadata(done, copies.MARK):  # missing, or not the runner's (an older kit's stopped run)
            print(f"{done} is missing: running {lesson.name} in sample mode first (`make lessons` runs them all).",
                  flush=True)
            result = lessons.run(lesson, out_dir=executed_dir)
            if result.status != "ok":
                raise slides.PublishError(f"{lesson.name} failed in sample mode ({result.error}): see "
                                          f"{result.output}, fix the lesson, then run the same command again.")
        elif lesson_cells(lesson) != lesson_cells(done):
            print(f"note: {done} was run from an older version of {lesson.name}; `make lessons` runs it again.")
        pairs.append((lesson, done))
    return pairs


def slug(text):
    """An anchor as GitHub writes one for a heading: lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def relink(page, ids, own):
    """Points a page's relative links at the site's pages: a lesson's .ipynb or a guide's .md becomes its .html
    (an anchor kept if that page has it, matched as GitHub writes anchors too); a link to any other file of
    the kit, which the site does not hold, becomes plain text."""
    def replace(match):
        target, anchor, rest, text = match.group(1), match.group(2) or "", match.group(3), match.group(4)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            return match.group(0)  # http:, mailto:, ...
        name = f"{pathlib.PurePosixPath(target).stem}.html" if target else own
        if name not in ids:
            return text
        anchor = anchor[1:]
        if anchor not in ids[name]:  # a GitHub-style anchor: the id that reads the same, else the page's top
            anchor = next((known for known in ids[name] if slug(known) == slug(anchor)), "")
        href = (name if target else "") + (f"#{anchor}" if anchor else "")
        return f'<a href="{href}"{rest}>{text}</a>'

    return re.sub(r'<a href="([^"#]*)(#[^"]*)?"([^>]*)>(.*?)</a>', replace, page, flags=re.DOTALL)


def build_site(pairs, out_dir=paths.BUILD / "site", guides=GUIDES):
    """Writes the course site into `out_dir`: index.html (contents, each lesson with its sections), a page per
    (lesson, executed copy) and per guide (markdown), each with a navigation bar. Returns index.html's path.
    A lesson's page is what learners may see: no solutions, no check outputs, no stderr, no local paths
    (`utils.outputs`)."""
    out_dir = pathlib.Path(out_dir)
    slides.copy_static(out_dir, ["mathjax"])
    pages = []  # (file name, title, notebook, folder for its images)
    for lesson, done in pairs:
        notebook = outputs.without_stderr(outputs.without_solutions(nbformat.read(done, as_version=4)))
        pages.append((f"{lesson.stem}.html", slides.title(notebook, lesson.stem), notebook, lesson.parent))
    for guide in guides:
        if not guide.is_file():
            print(f"note: {guide} is not there yet; the site has no page for it.")
            continue
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(guide.read_text("utf-8"))])
        pages.append((f"{guide.stem}.html", slides.title(notebook, guide.stem), notebook, guide.parent))
    order = ["index.html"] + [page[0] for page in pages]
    links = {name: re.split(r" — |: ", name_title)[0] for name, name_title, *_ in pages} | {"index.html": "Contents"}
    rendered, ids, export = {}, {"index.html": set()}, slides.exporter()
    for name, page_title, notebook, folder in pages:
        rendered[name] = slides.render(export, notebook, page_title, folder, nav_bar(order, name, links, guides))
        ids[name] = set(re.findall(r'\sid="([^"]+)"', rendered[name]))
    contents = []
    for name, page_title, *_ in pages:
        found = re.findall(r'<h([12]) id="([^"]+)"[^>]*>(.*?)</h\1>', rendered[name], re.DOTALL)
        sections = "".join(f'<li><a href="{name}#{anchor}">{html.escape(plain(text))}</a></li>'
                           for level, anchor, text in found if level == "2")
        contents.append(f'<li><a href="{name}">{html.escape(page_title)}</a><ul>{sections}</ul></li>')
        safely.write_text(out_dir / name, relink(rendered[name], ids, name))
    course = (paths.ROOT / "README.md").read_text("utf-8").splitlines()[0].lstrip("# ")
    index = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(course)}</title>'
             f"<style>{slides.PAGE_CSS}</style></head><body>{nav_bar(order, 'index.html', links, guides)}"
             f'<main class="course-index"><h1>{html.escape(course)}</h1><ol>{"".join(contents)}</ol></main>'
             "</body></html>\n")
    safely.write_text(out_dir / "index.html", index)
    return out_dir / "index.html"


def plain(fragment):
    """The text of an HTML heading, without its tags and nbconvert's ¶ link."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("¶", "").strip()


def nav_bar(order, name, links, guides):
    """The bar on top of every page of the site: contents, previous, next, and the guides."""
    at = order.index(name)
    step = [f'<a href="{order[at + move]}" rel="{rel}">{label}: {html.escape(links[order[at + move]])}</a>'
            if 0 <= at + move < len(order) else f"<span>{label}</span>" for move, rel, label in
            ((-1, "prev", "Previous"), (1, "next", "Next"))]
    extra = [f'<a href="{guide.stem}.html">{html.escape(links[guide.stem + ".html"])}</a>'
             for guide in guides if f"{guide.stem}.html" in links]
    return f'<nav class="course-nav"><a href="index.html">Contents</a>{"".join(step + extra)}</nav>'


def keep_reason(target, cells_sha256):
    """Why the learner copy at `target` must stay as it is, "" if it may be replaced by one with `cells_sha256`."""
    if not target.exists():
        return ""
    mark = copies.metadata(target, copies.MARK)
    if not mark.get("exercise_copy") or mark.get("written_to") != str(target.resolve()):
        return (f"kept {target}: it is not a learner copy this command wrote there; move it away (or give "
                "another --out) for a fresh copy.")
    if safely.is_read_only(target):
        return f"kept {target}: it is read-only; make it writable (chmod u+w) to let the command replace it."
    if mark.get("cells_sha256") != copies.cells_fingerprint(nbformat.read(target, as_version=4)):
        return (f"kept {target}: it was changed after it was written (your answers are in it); move it away "
                "for a fresh copy of the lesson.")
    return f"up to date: {target}" if mark["cells_sha256"] == cells_sha256 else ""


def build_exercises(lesson_paths, out_dir=paths.BUILD / "exercises"):
    """Writes a learner copy of each lesson into `out_dir`: no cell tagged `solution` (nor the Exercises' sentence
    about them, `outputs.SOLUTION_NOTE`), no outputs. A file there
    that this did not write, or that was changed since, is kept as it is. Returns the paths written."""
    out_dir, written = pathlib.Path(out_dir), []
    out_dir.mkdir(parents=True, exist_ok=True)
    for lesson in lesson_paths:
        notebook = outputs.without_solutions(lessons.read_notebook(lesson))
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.update(outputs=[], execution_count=None)
        target = out_dir / lesson.name
        fingerprint = copies.cells_fingerprint(notebook)
        notebook.metadata[copies.MARK] = {"exercise_copy": True, "written_to": str(target.resolve()),
                                          "cells_sha256": fingerprint}
        reason = keep_reason(target, fingerprint)
        if reason:
            print(reason)
            continue
        safely.write_text(target, nbformat.writes(notebook) + "\n")
        written.append(target)
        print(f"wrote {target}")
    return written


def folder(text):
    """An argparse type: `cli.folder` (an empty path is refused, not taken for the current folder), as a Path."""
    return pathlib.Path(cli.folder(text))


def command(argv):
    """`python -m utils.publish slides|site|exercises|mark-slides` (see the module docstring); the exit status."""
    parser = argparse.ArgumentParser(prog="python -m utils.publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("slides", "reveal.js slides of every lesson"), ("site", "a static site of the course"),
                       ("exercises", "learner copies of the lessons, without the solutions")):
        sub = commands.add_parser(name, help=what)
        sub.add_argument("--out", type=folder, default=paths.BUILD / name, help=f"(default build/{name})")
        if name != "exercises":
            sub.add_argument("--lessons", type=folder, default=paths.BUILD / "lessons",
                             help="executed lessons (default build/lessons; a missing one is run first)")
    marking = commands.add_parser("mark-slides", help="write the slide structure into lesson notebooks")
    marking.add_argument("notebooks", nargs="+", type=cli.notebook)
    args = parser.parse_args(argv)
    if args.command == "mark-slides":
        for path in args.notebooks:
            notebook = lessons.read_notebook(path)
            before, after = nbformat.writes(notebook), nbformat.writes(slides.mark_slides(notebook))
            if after != before:
                safely.write_text(path, after + "\n")
            print(f"{'marked' if after != before else 'already marked'}: {path}")
    elif args.command == "exercises":
        if args.out.is_dir() and args.out.samefile(paths.NOTEBOOKS):  # each lesson "kept", nothing written (any case)
            raise ValueError(f"--out {args.out} is the lessons' own folder: give another one for the learner copies "
                             f"(the default is {paths.BUILD / 'exercises'}).")
        build_exercises(lessons.all_lessons(), args.out)
    else:
        if not args.lessons.is_dir() and args.lessons != paths.BUILD / "lessons":
            raise slides.PublishError(f"--lessons {args.lessons} is not a folder: give the folder of executed "
                                      "lessons (`make lessons` writes them to build/lessons, the default).")
        build = slides.build_slides if args.command == "slides" else build_site
        written = build(executed(args.lessons), args.out)
        print(f"\n{args.command} written to {args.out}: open {written[0] if args.command == 'slides' else written}")
    return 0


def main(argv=None):
    """Runs the command line: a problem ends in one line and exit status 2."""
    return cli.run(command, argv, expected=(slides.PublishError, lessons.LessonError, ValueError, OSError),
                   interrupted="each file is written whole or not at all; run the same command again to carry on")


if __name__ == "__main__":
    sys.exit(main())
