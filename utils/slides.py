"""Lessons as reveal.js slides, and the offline HTML pages they share with the course site (see `utils.publish`).

`mark_slides` gives every lesson the same slide structure, kept in its cells' `slideshow` metadata (JupyterLab's
and RISE's too): one slide per section (the title and each `## ` heading), a sub-slide for each `### ` heading and
each code cell over LONG_CODE lines, and the solutions of the exercises skipped. nbconvert renders the decks
(SlidesExporter) and the site's pages (HTMLExporter) through its own templates, less everything they would load
from the internet: reveal.js and MathJax come from `_static/` next to the pages (see `copy_static`).
"""

import copy
import pathlib
import re
import shutil
import sys

import nbformat

from utils import paths, safely

WEB = pathlib.Path(sys.prefix) / "share" / "course-web"  # filled by the Makefile (reveal.js/, mathjax/)
LONG_CODE = 15  # a code cell longer than this many lines gets a sub-slide of its own
HEADING, FENCE = re.compile(r"#{1,3} \S"), re.compile(r" {0,3}(```|~~~)")
HEAD = """{%- block html_head_js -%}{%- endblock -%}{%- block html_head_js_mermaidjs -%}{%- endblock -%}
{%- block jupyter_widgets -%}{%- endblock -%}{%- block html_head_js_mathjax -%}
<script>window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], processEscapes: true}};</script>
<script src="_static/mathjax/tex-svg.js"></script>{%- endblock -%}
{%- block html_head_css -%}<style>{{ resources.course_css }}</style>{%- endblock -%}"""
TEMPLATES = {  # nbconvert's own templates, without anything fetched from the internet
    "course_slides.j2": "{%- extends 'index.html.j2' -%}" + HEAD + """{%- block footer_js -%}
<script src="_static/reveal.js/dist/reveal.js"></script>
<script>Reveal.initialize({controls: true, progress: true, history: true, slideNumber: "c/t"});</script>
{%- endblock -%}""",
    "course_page.j2": "{%- extends 'index.html.j2' -%}" + HEAD + """{%- block body_header -%}{{ super() }}
{{ resources.course_nav }}{%- endblock -%}""",
}
SLIDES_CSS = """.reveal .slides :is(h1, h2, h3) { text-transform: none; }
.reveal .slides section { height: 100%; overflow-y: auto; } .reveal .jp-OutputArea img { max-height: 60vh; }"""
PAGE_CSS = """.course-nav { position: sticky; top: 0; z-index: 10; display: flex; flex-wrap: wrap; gap: 0.4em 1.5em;
  padding: 0.6em 1em; background: #f3f5f7; border-bottom: 1px solid #d0d7de; font: 15px system-ui, sans-serif; }
.course-nav a { color: #0969da; } .course-nav span { color: #8c959f; }
.course-index { max-width: 60em; margin: 1em auto; font-family: system-ui, sans-serif; }
.course-index li { margin: 0.2em 0; }"""


class PublishError(ValueError):
    """Slides, site or exercises cannot be made as asked; the message says what to do next."""


def split_at_headings(source):
    """The parts of a markdown cell's text, cut before each `#`, `##` or `###` heading (outside code blocks)."""
    parts, fenced = [[]], False
    for line in source.splitlines(keepends=True):
        fenced ^= bool(FENCE.match(line))
        if not fenced and HEADING.match(line) and "".join(parts[-1]).strip():
            parts.append([])
        parts[-1].append(line)
    return ["".join(part).rstrip("\n") if at < len(parts) - 1 else "".join(part) for at, part in enumerate(parts)]


def slide_type(cell):
    """The slide type `mark_slides` gives a cell, or None for none (a cell that joins the slide before it)."""
    if "solution" in cell.metadata.get("tags", []):
        return "skip"  # the slides show the exercise, not its answer
    text = cell.source.lstrip() if cell.cell_type == "markdown" else ""
    if re.match(r"##? \S", text):
        return "slide"
    long_code = cell.cell_type == "code" and len(cell.source.splitlines()) > LONG_CODE
    return "subslide" if long_code or text.startswith("### ") else None


def mark_slides(notebook):
    """Gives `notebook`, in place, the course's slide structure (see the module docstring) and returns it.

    A markdown cell with a heading after its first line is split so that the heading starts a cell. A slide
    type an instructor set by hand (fragment, notes, skip) stays, except on cells this sets. Running it again
    changes nothing.
    """
    cells = []
    for cell in notebook.cells:
        parts = split_at_headings(cell.source) if cell.cell_type == "markdown" else [cell.source]
        for number, part in enumerate(parts):
            piece = cell if number == 0 else nbformat.v4.new_markdown_cell(part, metadata=copy.deepcopy(cell.metadata))
            piece.source = part
            if number:
                piece.pop("id", None)
                if "id" in cell:
                    piece["id"] = f"{cell['id'][:56]}-{number + 1}"
            kind, given = slide_type(piece), piece.metadata.get("slideshow", {}).get("slide_type")
            if kind:
                piece.metadata["slideshow"] = {"slide_type": kind}
            elif given in ("slide", "subslide"):
                del piece.metadata["slideshow"]
            cells.append(piece)
    notebook.cells = cells
    return notebook


def exporter(slides=False):
    """nbconvert's exporter for a reveal.js deck (`slides`) or a page of the site, set up as the module says."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter, SlidesExporter

    kind, template = (SlidesExporter, "course_slides.j2") if slides else (HTMLExporter, "course_page.j2")
    reveal = {"reveal_url_prefix": "_static/reveal.js", "reveal_theme": "white"}  # white's fonts are in _static
    return kind(extra_loaders=[DictLoader(TEMPLATES)], template_file=template, embed_images=True,
                exclude_input_prompt=slides, exclude_output_prompt=slides, **(reveal if slides else {}))


def render(export, notebook, name, folder, nav=""):
    """One notebook as a page (or deck) titled `name`, with images in its markdown embedded from `folder`."""
    resources = {"metadata": {"name": name, "path": str(folder)}, "course_nav": nav,
                 "course_css": PAGE_CSS if nav else SLIDES_CSS}
    return export.from_notebook_node(notebook, resources=resources)[0]


def copy_static(out_dir, names):
    """Copies reveal.js and MathJax (`names` of WEB's folders) into `out_dir/_static/`, for relative links."""
    for name in names:
        if not (WEB / name).is_dir():
            raise PublishError(f"{WEB / name} is missing: run `make slides` or `make site`, which fetch reveal.js "
                               "and MathJax from the npm registry once, then run the same command again.")
        shutil.copytree(WEB / name, pathlib.Path(out_dir) / "_static" / name, dirs_exist_ok=True)


def title(notebook, default):
    """The text of a notebook's first `# ` heading, or `default`."""
    lines = (line for cell in notebook.cells if cell.cell_type == "markdown" for line in cell.source.splitlines())
    return next((line[2:].strip() for line in lines if line.startswith("# ")), default)


def build_slides(pairs, out_dir=paths.BUILD / "slides"):
    """Writes `NN_name.slides.html` for each (lesson, executed copy) into `out_dir`; returns their paths."""
    out_dir = pathlib.Path(out_dir)
    copy_static(out_dir, ["reveal.js", "mathjax"])
    written, export = [], exporter(slides=True)
    for lesson, done in pairs:
        notebook = mark_slides(nbformat.read(done, as_version=4))
        written.append(out_dir / f"{lesson.stem}.slides.html")
        safely.write_text(written[-1], render(export, notebook, title(notebook, lesson.stem), lesson.parent))
    return written
