"""Lessons as reveal.js slides, and the offline HTML pages they share with the course site (see `utils.publish`).

`mark_slides` gives every lesson one slide structure in its cells' `slideshow` metadata (JupyterLab's and RISE's
too): a slide per section (the title, each `## `), a sub-slide per `### ` and per code cell over LONG_CODE lines,
solutions skipped. A deck, built from an executed copy, also gets `fit_to_slides`: a sub-slide wherever the next
cell, paragraph or output would not fit on the 960 x 700 slide. Decks and site pages show what learners may see
(`utils.outputs`), by nbconvert's templates, offline: reveal.js and MathJax are in `_static/`.
"""

import base64
import copy
import html
import pathlib
import re
import shutil
import struct
import sys

import nbformat

from utils import outputs, paths, safely

WEB = pathlib.Path(sys.prefix) / "share" / "course-web"  # filled by the Makefile (reveal.js/, mathjax/)
LONG_CODE = 15  # a code cell longer than this many lines gets a sub-slide of its own
HEADING, FENCE = re.compile(r"#{1,3} \S"), re.compile(r" {0,3}(```|~~~)")
LIST_ITEM = re.compile(r"([-*+]|\d+[.)]) ")  # a top-level item of a list
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
# reveal.js scales a slide of 960 x 700 px to the screen: a deck's cells fill 880 x 670 of it, by estimate (below)
SLIDE_WIDTH, SLIDE_HEIGHT = 880, 670
FIGURE_HEIGHT, CODE_HEIGHT, OUTPUT_HEIGHT = 420, 600, 480  # the most a figure, a code box or a text output takes
SLIDES_CSS = f""".reveal .slides :is(h1, h2, h3) {{ text-transform: none; }}
.reveal .slides section {{ height: 100%; overflow-y: auto; }}
.reveal div.highlight > pre {{ white-space: pre-wrap; overflow-wrap: anywhere; max-height: {CODE_HEIGHT}px;
  overflow-y: auto; }}
.reveal div.jp-OutputArea-output {{ max-width: 100%; overflow-x: auto; }}
.reveal div.jp-OutputArea-output img {{ max-height: {FIGURE_HEIGHT}px; width: auto; max-width: 100%; }}
.reveal div.jp-OutputArea-output pre {{ font-size: 16px; max-height: {OUTPUT_HEIGHT}px; overflow: auto; }}
.reveal .slides table {{ font-size: 15px; }} .reveal .slides :is(td, th) {{ padding: 3px 8px; }}"""
PAGE_CSS = """.course-nav { position: sticky; top: 0; z-index: 10; display: flex; flex-wrap: wrap; gap: 0.4em 1.5em;
  padding: 0.6em 1em; background: #f3f5f7; border-bottom: 1px solid #d0d7de; font: 15px system-ui, sans-serif; }
.course-nav a { color: #0969da; } .course-nav span { color: #8c959f; }
.course-index { max-width: 60em; margin: 1em auto; font-family: system-ui, sans-serif; }
.course-index li { margin: 0.2em 0; }
:is(h1, h2, h3, h4, h5, h6)[id] { scroll-margin-top: 4.5rem; }  /* a contents link's heading below the nav bar */"""


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
            if kind == "subslide" and piece.cell_type == "code" and cells and only_heading(cells[-1]):
                kind = None  # long code stays under its section's heading: never a slide with a heading alone
            if kind:
                piece.metadata["slideshow"] = {"slide_type": kind}
            elif given in ("slide", "subslide"):
                del piece.metadata["slideshow"]
            cells.append(piece)
    notebook.cells = cells
    return notebook


def only_heading(cell):
    """True for a markdown cell that is one heading line and nothing else."""
    return cell.cell_type == "markdown" and bool(re.fullmatch(r"#{1,3} [^\n]+", cell.source.strip()))


def png_size(data):
    """(width, height) of a base64 PNG, from its header."""
    head = base64.b64decode("".join(data[:64].split())[:44])
    return struct.unpack(">II", head[16:24]) if head[1:4] == b"PNG" else (SLIDE_WIDTH, FIGURE_HEIGHT)


def text_height(text, chars, line):
    """Estimated pixels of `text` wrapped in lines of `chars` characters, each `line` pixels high."""
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    return line * sum(max(1, -(-len(part) // chars)) for part in lines)


def markdown_height(source):
    """Estimated pixels of a markdown cell on a slide. This and the estimates below were calibrated in Chromium
    on the six lessons' decks, one cell or output per slide: mostly within 10%, more often over than under."""
    height, fenced = 20, False
    for part in source.split("\n"):
        fenced ^= bool(FENCE.match(part))
        level = len(part) - len(part.lstrip("#")) if not fenced and HEADING.match(part) else 0
        if level:
            height += {1: 95, 2: 80, 3: 65}[level] * max(1, -(-len(part) // (25 + 15 * level)))
        elif not part.strip():
            height += 14
        elif part.strip() == "$$":
            height += 20
        elif fenced or FENCE.match(part):
            height += 24
        else:  # a paragraph's line or a list item, as read: links without their address
            item = LIST_ITEM.match(part.lstrip())
            text = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", part)
            height += text_height(text, 80 if item else 90, 29) + (8 if item else 0)
    return height


def output_height(output):
    """Estimated pixels of one output of a code cell on a slide."""
    if output.output_type == "stream":
        return min(OUTPUT_HEIGHT, text_height(output.text, 90, 19)) + 14
    data = output.get("data", {})
    if "image/png" in data:
        width, height = png_size(data["image/png"])
        return min(FIGURE_HEIGHT, height * min(1, SLIDE_WIDTH / width)) + 56
    if any(kind.startswith("image/") for kind in data):
        return FIGURE_HEIGHT + 56
    if "text/markdown" in data:
        return markdown_height(data["text/markdown"])
    if "text/html" in data:
        text = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>|</tr>", "\n", data["text/html"])))
        if data["text/html"].startswith("<pre"):  # rich's tables (model.summary()): one line each, scrolled across
            return min(OUTPUT_HEIGHT, text_height(text, 1000, 22)) + 14
        return text_height(text, 70, 37) + 14
    return min(OUTPUT_HEIGHT, text_height(data.get("text/plain", ""), 90, 19)) + 14


def ending(output):
    """A stream output taller than OUTPUT_HEIGHT on a slide, cut (in place; returned) to its last lines under a line
    saying how many are left out: a deck shows how a training log ends, its result."""
    if output.output_type != "stream" or text_height(output.text, 90, 19) <= OUTPUT_HEIGHT:
        return output
    lines, room, kept = output.text.rstrip("\n").split("\n"), OUTPUT_HEIGHT - 2 * 19, 0
    for line in reversed(lines):
        room -= max(19, text_height(line, 90, 19))
        if room < 0:
            break
        kept += 1
    kept = max(1, kept)  # a last line taller than the box is still shown, and counted as shown
    output.text = f"[{len(lines) - kept} lines above, in the lesson]\n" + "\n".join(lines[-kept:]) + "\n"
    return output


def code_height(cell):
    """Estimated pixels of a code cell's box on a slide (its outputs apart)."""
    return min(CODE_HEIGHT, text_height(cell.source, 75, 23)) + 30


def paragraphs(source):
    """A markdown cell's text cut before each paragraph and list item (outside code blocks); a heading or a line
    ending in a colon stays with what follows, a display formula ($$) and text going on in lower case too."""
    parts, fenced, blank = [[]], False, False
    for line in source.split("\n"):
        lead = next((part for part in reversed(parts[-1]) if part.strip()), "")
        if not fenced and line.strip() and (blank or LIST_ITEM.match(line)) and not (
                HEADING.match(lead) or lead.rstrip().endswith(":") or line.startswith("$$") or line[0].islower()):
            parts.append([])
        fenced ^= bool(FENCE.match(line))
        parts[-1].append(line)
        blank = not line.strip()
    return ["\n".join(part) for part in parts if part]  # joined by "\n", the text as it was


def fit_to_slides(notebook):
    """Gives an executed `notebook` marked by `mark_slides` (in place; returned) the sub-slides its deck needs to fit
    960 x 700, by the estimates above: a cell, paragraph or output that would not fit under what is above starts one
    (a code cell kept with its first output if they fit; never after a heading alone). The lesson's own stay."""
    cells, used, alone = [], 0, False  # alone: the slide so far is a heading only
    for cell in notebook.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        if kind in ("skip", "notes"):
            cells.append(cell)
            continue
        if cell.cell_type == "code":
            pieces = [(None, code_height(cell))] + [(out, output_height(out)) for out in cell.outputs]
            cell.outputs = []
        else:
            pieces = [(part, markdown_height(part)) for part in paragraphs(cell.source)] or [("", 0)]
            cell.source = pieces[0][0]
        first = sum(height for _, height in pieces[:2]) if cell.cell_type == "code" else pieces[0][1]
        if kind in ("slide", "subslide") or (used and used + first > SLIDE_HEIGHT and not alone):
            cell.metadata["slideshow"], used = {"slide_type": kind if kind in ("slide", "subslide") else "subslide"}, 0
        alone = not used and only_heading(cell)
        cells.append(cell)
        current, used = cell, used + pieces[0][1]
        for number, (piece, height) in enumerate(pieces[1:], 1):
            if used + height > SLIDE_HEIGHT:  # the rest goes on a sub-slide of its own
                current = copy.deepcopy(cell)
                current["id"] = f"{cell.get('id', 'cell')[:52]}-part{number}"
                current.metadata["slideshow"] = {"slide_type": "subslide"}
                if cell.cell_type == "code":
                    current.update(outputs=[], metadata={**current.metadata, "transient": {"remove_source": True}})
                else:
                    current.source = ""
                cells.append(current)
                used = 0
            if cell.cell_type == "code":
                current.outputs.append(piece)
            else:
                current.source += f"\n{piece}" if current.source else piece
            used += height
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
    css = PAGE_CSS if nav else SLIDES_CSS
    resources = {"metadata": {"name": name, "path": str(folder)}, "course_nav": nav, "course_css": css}
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
        notebook = outputs.without_stderr(outputs.without_solutions(mark_slides(nbformat.read(done, as_version=4))))
        for cell in (cell for cell in notebook.cells if cell.cell_type == "code"):
            cell.outputs = [ending(output) for output in cell.outputs]
        notebook = fit_to_slides(notebook)
        written.append(out_dir / f"{lesson.stem}.slides.html")
        safely.write_text(written[-1], render(export, notebook, title(notebook, lesson.stem), lesson.parent))
    return written
