"""utils.publish: slide structure, slides, learner copies of the exercises, and the course site in Chromium."""

import ast
import copy
import os
import pathlib
import re
import tempfile
import urllib.parse

import nbformat
import pytest

from utils import cli, copies, lessons, outputs, paths, publish, slides

LESSONS = lessons.all_lessons()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def executed(executed_lessons, tmp_path_factory):
    """(lesson, executed copy) for every lesson: the copies the smoke tests left, any missing one run here."""
    missing = [path for path in LESSONS if not copies.metadata(executed_lessons / path.name, copies.MARK)]
    with pytest.MonkeyPatch.context() as monkeypatch:  # as in test_notebooks: never a learner's data/ or models/
        scratch = tmp_path_factory.mktemp("smoke")
        monkeypatch.setenv("COURSE_MODELS_DIR", str(scratch / "models"))
        monkeypatch.setenv("COURSE_DATA_DIR", str(scratch / "data"))
        monkeypatch.setattr(paths, "MODELS", scratch / "models")
        monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws figures inline, as in JupyterLab
        for path in missing:
            result = lessons.run(path, out_dir=executed_lessons, smoke=True, html=False, progress=False)
            assert result.status == "ok", result.error
    return publish.executed(executed_lessons)


@pytest.fixture(scope="module")
def decks(executed, tmp_path_factory):
    return slides.build_slides(executed, tmp_path_factory.mktemp("slides"))


@pytest.fixture(scope="module")
def site(executed, tmp_path_factory):
    return publish.build_site(executed, tmp_path_factory.mktemp("site"))


def notebook_of(*cells):
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Py"}})


def markdown(text, **metadata):
    return nbformat.v4.new_markdown_cell(text, metadata=metadata)


def code(text, *tags):
    return nbformat.v4.new_code_cell(text, metadata={"tags": list(tags)} if tags else {})


def headings(notebook, prefixes=("# ", "## ")):
    """The title and `## ` heading lines of a notebook's markdown, outside code blocks: its sections."""
    found = []
    for cell in notebook.cells:
        fenced = False
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            fenced ^= line.lstrip().startswith(("```", "~~~"))
            if not fenced and line.startswith(prefixes):
                found.append(line)
    return found


def test_mark_slides_gives_each_section_a_slide_and_long_code_a_subslide():
    long_code = "\n".join(f"x{line} = {line}" for line in range(slides.LONG_CODE + 1))
    notebook = notebook_of(
        markdown("# Lesson 9\n\nintro"), markdown("## Setup"), code("import numpy"),
        markdown("Prose of the section.\n\n```python\n## not a heading\n```\n## 1. First\n\nmore\n### A part\ntext"),
        code(long_code), code(long_code.split("\n", 1)[1]), markdown("A remark.", slideshow={"slide_type": "fragment"}),
        markdown("An aside.", slideshow={"slide_type": "skip"}), markdown("\n## 2. After a blank line"),
        markdown("Was a slide once.", slideshow={"slide_type": "slide"}), code("answer = 1", "solution"),
        markdown("## Summary\n\n- one\n## Exercises\n\n### More"))
    text_before = [line for cell in notebook.cells for line in cell.source.splitlines() if line.strip()]
    slides.mark_slides(notebook)
    kinds = [(cell.source.split("\n")[0], cell.metadata.get("slideshow", {}).get("slide_type"))
             for cell in notebook.cells]
    assert kinds == [("# Lesson 9", "slide"), ("## Setup", "slide"), ("import numpy", None),
                     ("Prose of the section.", None), ("## 1. First", "slide"), ("### A part", "subslide"),
                     ("x0 = 0", "subslide"), ("x1 = 1", None), ("A remark.", "fragment"), ("An aside.", "skip"),
                     ("", "slide"), ("Was a slide once.", None),
                     ("answer = 1", "skip"), ("## Summary", "slide"), ("## Exercises", "slide"),
                     ("### More", "subslide")]
    assert "## not a heading" in notebook.cells[3].source and not notebook.cells[3].source.endswith("\n")
    assert len({cell.id for cell in notebook.cells}) == len(notebook.cells)
    before = nbformat.writes(notebook)
    assert nbformat.writes(slides.mark_slides(notebook)) == before, "a second run changed the notebook"
    assert [line for cell in notebook.cells for line in cell.source.splitlines() if line.strip()] == text_before


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_the_lessons_carry_the_slide_structure_mark_slides_gives_them(path):
    committed = nbformat.writes(nbformat.read(path, as_version=4))
    marked = nbformat.writes(slides.mark_slides(nbformat.read(path, as_version=4)))
    in_sync = marked == committed
    assert in_sync, f"run `python -m utils.publish mark-slides {path.relative_to(paths.ROOT)}` (then commit it)"


def test_clean_keeps_the_slide_structure(tmp_path):
    path = tmp_path / "lesson.ipynb"
    nbformat.write(slides.mark_slides(notebook_of(markdown("# Title"), code("1 + 1"))), path)
    copies.clean(path)
    assert nbformat.read(path, as_version=4).cells[0].metadata == {"slideshow": {"slide_type": "slide"}}


def top_level_sections(page):
    """How many <section> elements of a reveal.js page are not inside another: its horizontal slides."""
    depth = count = 0
    for tag in re.findall(r"<section\b|</section>", page):
        count += tag != "</section>" and depth == 0
        depth += -1 if tag == "</section>" else 1
    return count


@pytest.mark.notebook  # builds from the lessons executed by test_notebooks (runs any missing)
@pytest.mark.parametrize("at", range(len(LESSONS)), ids=[path.stem for path in LESSONS])
def test_slides_have_one_top_level_slide_per_section(decks, executed, at):
    lesson, done = executed[at]
    assert decks[at].name == f"{lesson.stem}.slides.html"
    sections = headings(nbformat.read(done, as_version=4))
    assert top_level_sections(decks[at].read_text("utf-8")) == len(sections), sections


def test_learner_copies_keep_every_cell_but_the_solutions(tmp_path, capsys):
    lesson = tmp_path / "lessons" / "09_exercises.ipynb"
    lesson.parent.mkdir()
    cells = [markdown("# Lesson 9"), code("x = 1", "parameters"), markdown("## Exercises"),
             markdown("**Exercise 9.1**"), code("kernel = None", "exercise"), code("kernel = 3", "solution"),
             code('exercises.check("9.1", kernel)', "check")]
    cells[-1].update(outputs=[nbformat.v4.new_output("stream", text="correct")], execution_count=7)
    nbformat.write(notebook_of(*cells), lesson)
    out = tmp_path / "exercises"
    assert publish.build_exercises([lesson, *LESSONS], out) == [out / path.name for path in [lesson, *LESSONS]]
    for path in [lesson, *LESSONS]:
        original, copy = (nbformat.read(file, as_version=4) for file in (path, out / path.name))
        kept = [(cell.cell_type, cell.source.replace(f" {outputs.SOLUTION_NOTE}", ""), cell.metadata.get("tags", []))
                for cell in original.cells if "solution" not in cell.metadata.get("tags", [])]
        assert [(cell.cell_type, cell.source, cell.metadata.get("tags", [])) for cell in copy.cells] == kept
        assert not any(cell.get("outputs") or cell.get("execution_count") for cell in copy.cells)
        assert not any("tagged `solution`" in cell.source for cell in copy.cells), "a sentence about solution cells"
    assert [cell.source for cell in nbformat.read(out / lesson.name, as_version=4).cells][4:] == [
        "kernel = None", 'exercises.check("9.1", kernel)']

    target, fresh = out / lesson.name, out / LESSONS[0].name
    worked = nbformat.read(target, as_version=4)
    worked.cells[4].source = "kernel = 3  # my answer"
    nbformat.write(worked, target)
    (out / LESSONS[1].name).write_text("{}")  # not a copy this command wrote
    (out / LESSONS[2].name).chmod(0o444)
    before = {path: path.read_bytes() for path in out.iterdir()}
    mtime = fresh.stat().st_mtime_ns
    capsys.readouterr()
    assert publish.build_exercises([lesson, *LESSONS[:3]], out) == []
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"kept {target}: it was changed after it was written (your answers are in it); move it "
                       "away for a fresh copy of the lesson.", f"up to date: {fresh}",
                       f"kept {out / LESSONS[1].name}: it is not a learner copy this command wrote there; move it "
                       "away (or give another --out) for a fresh copy.",
                       f"kept {out / LESSONS[2].name}: it is read-only; make it writable (chmod u+w) to let the "
                       "command replace it."]
    assert {path: path.read_bytes() for path in out.iterdir()} == before and fresh.stat().st_mtime_ns == mtime
    changed = nbformat.read(lesson, as_version=4)
    changed.cells[3].source = "**Exercise 9.1**, reworded"
    nbformat.write(changed, lesson)
    target.unlink()  # the learner moved their work away: the lesson's new version replaces an unedited copy
    publish.build_exercises([lesson], out)
    assert nbformat.read(target, as_version=4).cells[3].source == "**Exercise 9.1**, reworded"


def test_a_failed_lesson_a_mistyped_folder_or_no_reveal_js_ends_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(slides, "WEB", tmp_path / "course-web")
    failed = tmp_path / "lessons" / LESSONS[0].name
    failed.parent.mkdir()
    failed.write_text('{"cells": [], "metadata": {"papermill": {"exception": true}}}')
    for argv, words in ((["slides", "--lessons", str(failed.parent)], "is a run of"),
                        (["site", "--lessons", str(tmp_path / "typo")], "is not a folder: give the folder"),
                        (["site", "--out", str(tmp_path / "site")], "mathjax is missing: run `make slides`")):
        if argv[0] == "site":
            monkeypatch.setattr(publish, "executed", lambda folder: [])
        assert cli.run(publish.command, argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_an_empty_out_or_the_lessons_own_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # an empty --out was taken for the current folder, and the copies written there
    for argv in (["exercises", "--out", ""], ["site", "--lessons", " "], ["mark-slides", ""]):
        with pytest.raises(SystemExit) as stop:
            publish.command(argv)
        assert stop.value.code == 2 and "the path is empty: give " in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    before = {path: path.read_bytes() for path in paths.NOTEBOOKS.iterdir() if path.is_file()}
    assert cli.run(publish.command, ["exercises", "--out", str(paths.NOTEBOOKS)]) == 2  # was: 'kept …' each, exit 0
    assert capsys.readouterr().err == (f"error: --out {paths.NOTEBOOKS} is the lessons' own folder: give another one "
                                       f"for the learner copies (the default is {paths.BUILD / 'exercises'}).\n")
    assert before == {path: path.read_bytes() for path in paths.NOTEBOOKS.iterdir() if path.is_file()}


def test_every_line_the_commands_print_is_in_the_troubleshooting_page():
    import test_troubleshooting

    doc = (paths.ROOT / "docs" / "troubleshooting.md").read_text()
    strings = [test_troubleshooting.template(node) for node in ast.walk(ast.parse(pathlib.Path(
        publish.__file__).read_text())) if isinstance(node, ast.JoinedStr)]
    printed = [text for text in strings if text.startswith(("kept ", "note: ", "up to date", "… is missing: run"))]
    assert len(printed) == 7 and "utils/publish.py" in test_troubleshooting.MODULES
    missing = [text for text in printed if f"> {text}" not in doc]
    assert not missing, "add these to docs/troubleshooting.md:\n" + "\n".join(missing)


@pytest.mark.notebook  # builds from the lessons executed by test_notebooks (runs any missing)
def test_the_site_and_the_slides_in_a_real_browser(site, decks, executed):
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    folder = site.parent
    pages = sorted(folder.glob("*.html"))
    lesson_pages = [folder / f"{lesson.stem}.html" for lesson, _ in executed]
    guides = [folder / f"{guide.stem}.html" for guide in publish.GUIDES if guide.is_file()]
    assert set(pages) == {site, *lesson_pages, *guides}
    ids, links, fetched, failed, errors = {}, [], [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.on("request", lambda request: fetched.append(request.url)
                if not request.url.startswith(("file:", "data:")) else None)
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            nav = page.eval_on_selector_all("nav.course-nav a", "links => links.map(a => a.getAttribute('href'))")
            assert "index.html" in nav and {guide.name for guide in guides} <= set(nav), (path.name, nav)
            assert page.locator("nav.course-nav a[rel=prev], nav.course-nav a[rel=next]").count() >= 1, path.name
            figures = page.eval_on_selector_all("img", """images => images.map(image => [image.complete,
                image.naturalWidth, image.getBoundingClientRect().width, image.getBoundingClientRect().height])""")
            assert all(done and natural > 0 and width > 0 and height > 0 for done, natural, width, height in figures), \
                (path.name, figures)
            if path in lesson_pages:
                assert figures, f"{path.name} shows no figure"
            ids[path] = set(page.eval_on_selector_all("[id]", "elements => elements.map(element => element.id)"))
            links += [(path, href) for href in page.eval_on_selector_all(
                "a[href]", "links => links.map(a => a.getAttribute('href'))")]
        for path, href in links:
            if re.match(r"[a-z][a-z0-9+.-]*:|//", href, re.IGNORECASE):
                continue  # http(s):, mailto: and the like leave the site
            target, _, anchor = href.partition("#")
            resolved = (path.parent / urllib.parse.unquote(target)).resolve() if target else path
            assert resolved.is_file(), f"{path.name}: broken link {href}"
            # a browser looks for the id as written, then percent-decoded (nbconvert writes ids percent-encoded)
            assert not anchor or {anchor, urllib.parse.unquote(anchor)} & ids[resolved], f"{path.name}: {href}"
        index = site.read_text("utf-8")
        for (lesson, done), lesson_page in zip(executed, lesson_pages):
            sections = headings(nbformat.read(done, as_version=4), ("## ",))
            assert len(re.findall(rf'href="{lesson_page.name}#', index)) == len(sections), lesson.stem

        deck = decks[0]  # lesson 1: figures and formulas
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        sections = headings(nbformat.read(executed[0][1], as_version=4))
        assert page.evaluate("Reveal.getHorizontalSlides().length") == len(sections)
        page.wait_for_function("() => document.querySelector('mjx-container svg') !== null")
        page.screenshot(path=os.environ.get("SLIDES_SCREENSHOT") or deck.with_suffix(".png"))
        browser.close()
    assert not fetched, f"pages fetched from the internet: {fetched[:5]}"
    assert not failed and not errors, (failed[:5], errors[:5])


def png(width, height):
    """A blank PNG of `width` x `height` pixels, base64-encoded as in a notebook's output."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def executed_lesson(folder):
    """(lesson, executed copy) of a small lesson run in `folder`: tall figures, long prose, code and table, TensorFlow's
    stderr, and an exercise whose check ran after its solution."""
    out = nbformat.v4.new_output
    figures = [out("display_data", data={"image/png": png(800, 600), "text/plain": "<Figure>"}) for _ in range(4)]
    prose = "\n\n".join(f"Paragraph {number}: " + "words that fill a line of the slide " * 8 for number in range(12))
    prose += ("\n\n| results file | improved: test accuracy | cats / dogs found | epochs in minutes, photos/s | "
              "2017 baseline: test accuracy, epochs | whole lesson |\n|---|---|---|---|---|---|\n")  # lesson 3's
    prose += "".join(f"| `real_pets_run_{run}_session.json` | **81.4%** | 77% / 86% | 89 in 8.0, 226 | 68.6%, 21 | "
                     "9.7 min |\n" for run in range(14))
    cells = [markdown("# Lesson 9 — Tall things\n\nA lesson that does not fit on a slide as it is."),
             markdown("## 1. Figures\n\nFour figures from one cell."),
             code("print('hello')  # " + "a comment that runs far beyond the right edge of a slide " * 2),
             markdown(prose), code("\n".join(f"value_{line} = {line}" for line in range(40))),
             markdown("## Exercises\n\nWrite your answer, then run the check cell below it. " + outputs.SOLUTION_NOTE),
             markdown("**Exercise 9.1**"), code("kernel = None", "exercise"),
             code("kernel = sobel_diagonal()", "solution"),
             code("check_answer(kernel)", "check")]
    cells[2].outputs = [out("stream", name="stderr", text="E0000 cuda_platform.cc:52] failed call to cuInit: "
                            "/home/instructor/.venv/lib/python3.11\n"), out("stream", name="stdout", text="hello\n"),
                        *figures]
    cells[4].outputs = [out("stream", name="stdout", text="".join(f"epoch {n}: loss 0.{n}\n" for n in range(60)))]
    cells[8].outputs = [out("stream", name="stdout", text="the solution's own output\n")]
    cells[9].outputs = [out("execute_result", data={"text/plain": "✔ Exercise 9.1: correct."}, execution_count=9)]
    lesson, done = folder / "lessons" / "09_tall.ipynb", folder / "executed" / "09_tall.ipynb"
    for path, notebook in ((lesson, notebook_of(*copy_cells(cells, outputs=False))), (done, notebook_of(*cells))):
        path.parent.mkdir(exist_ok=True)
        nbformat.write(notebook, path)
    return lesson, done


def copy_cells(cells, outputs=True):
    copied = [nbformat.from_dict(copy.deepcopy(dict(cell))) for cell in cells]
    for cell in copied if not outputs else []:
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
    return copied


def slide_groups(notebook):
    """The shown cells of a deck's notebook, in (sub-)slides: a new group at each slide or sub-slide."""
    groups = []
    for cell in notebook.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide") or not groups:
            groups.append([])
        groups[-1].append(cell)
    return groups


def estimated_pieces(cell):
    """The estimated heights of a cell's parts on a slide, as `slides.fit_to_slides` packs them."""
    if cell.cell_type == "markdown":
        return [slides.markdown_height(part) for part in slides.paragraphs(cell.source)]
    shown = not cell.metadata.get("transient", {}).get("remove_source")
    return [slides.code_height(cell)] * shown + [slides.output_height(output) for output in cell.outputs]


def test_fit_to_slides_moves_what_does_not_fit_to_sub_slides_and_keeps_all_of_it(tmp_path):
    _, done = executed_lesson(tmp_path)
    notebook = outputs.without_stderr(outputs.without_solutions(slides.mark_slides(nbformat.read(done, as_version=4))))
    before = copy_cells(notebook.cells)
    fitted = slides.fit_to_slides(notebook)
    assert len(fitted.cells) > len(before)
    for group in slide_groups(fitted):  # each (sub-)slide fits by estimate, unless it holds one part alone
        pieces = [height for cell in group for height in estimated_pieces(cell)]  # (or a heading and one part)
        alone = len(pieces) == 1 or (len(pieces) == 2 and slides.only_heading(group[0]))
        assert sum(pieces) <= slides.SLIDE_HEIGHT or alone, [cell.source[:40] for cell in group]
    kept = [(cell.cell_type, cell.source, cell.get("outputs")) for cell in before]
    rejoined = []
    for cell in fitted.cells:  # a part moved on: a markdown paragraph, or outputs without their code
        if cell.get("id", "").rsplit("-", 1)[-1].startswith("part"):
            if cell.cell_type == "markdown":
                rejoined[-1] = ("markdown", f"{rejoined[-1][1]}\n{cell.source}", None)
            else:
                assert cell.metadata["transient"] == {"remove_source": True}
                rejoined[-1][2].extend(cell.outputs)
            assert cell.metadata["slideshow"] == {"slide_type": "subslide"}
        else:
            rejoined.append((cell.cell_type, cell.source, list(cell.outputs) if "outputs" in cell else None))
    assert rejoined == [(kind, text, None if outputs is None else list(outputs)) for kind, text, outputs in kept]
    assert len({cell.id for cell in fitted.cells}) == len(fitted.cells)

    short = slides.mark_slides(notebook_of(markdown("# Short\n\nOne line."), code("1 + 1"), markdown("## End")))
    unchanged = nbformat.writes(short)
    assert nbformat.writes(slides.fit_to_slides(short)) == unchanged, "a lesson that fits got sub-slides"


def test_a_sections_heading_is_never_a_slide_of_its_own(tmp_path):
    long_code = "\n".join(f"x{line} = {line}" for line in range(slides.LONG_CODE + 10))
    notebook = slides.mark_slides(notebook_of(markdown("# Lesson"), markdown("## 9. Record the run"), code(long_code),
                                              markdown("### A part"), code(long_code)))
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in notebook.cells]
    assert kinds == ["slide", "slide", None, "subslide", None]  # long code stays under its heading
    tall = nbformat.v4.new_output("stream", name="stdout", text="a line\n" * 60)
    notebook.cells[2].outputs = [tall]
    groups = slide_groups(slides.fit_to_slides(notebook))
    assert [cell.source.split("\n")[0] for cell in groups[1]][:2] == ["## 9. Record the run", "x0 = 0"]


def test_a_long_log_shows_its_end_on_a_slide_and_local_paths_are_written_from_the_kits_root():
    log = "".join(f"Epoch {epoch}/60 - loss: 0.{epoch:02d} - val_accuracy: 0.9\n" for epoch in range(1, 61))
    tall = slides.ending(nbformat.v4.new_output("stream", name="stdout", text=log + "validation accuracy 96.2%\n"))
    shown = tall.text.rstrip("\n").split("\n")
    assert shown[-1] == "validation accuracy 96.2%" and shown[-2] == "Epoch 60/60 - loss: 0.60 - val_accuracy: 0.9"
    assert re.fullmatch(r"\[(\d+) lines above, in the lesson\]", shown[0])
    assert int(shown[0][1:].split()[0]) + len(shown) - 1 == 61 and len(shown) > 10
    assert slides.text_height(tall.text, 90, 19) <= slides.OUTPUT_HEIGHT
    short = nbformat.v4.new_output("stream", name="stdout", text="one line\n")
    assert slides.ending(copy.deepcopy(short)) == short

    run = f"{paths.MODELS}/03_cnn_from_scratch/runs/20261205-215958-sample"
    photo = pathlib.Path(tempfile.gettempdir()) / "tmpk7yd64i4" / "chelsea.jpg"
    cell = code("print(run)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"This run saves into {run}\n{photo}: cat\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": repr(f"{paths.ROOT}/notebooks/x")})]
    outputs.without_stderr(notebook_of(cell))
    assert cell.outputs[0].text == ("This run saves into models/03_cnn_from_scratch/runs/20261205-215958-sample\n"
                                    "chelsea.jpg: cat\n")
    assert cell.outputs[1].data["text/plain"] == "'notebooks/x'"


def test_a_display_formula_and_the_sentence_it_belongs_to_stay_on_one_slide():
    text = ("For an input of $n$ pixels the output has\n\n$$\\lfloor n - k \\rfloor + 1$$\n\n"
            "pixels. \"Valid\" means $p = 0$.\n\nA new paragraph.\n\n- an item")
    assert slides.paragraphs(text) == [
        "For an input of $n$ pixels the output has\n\n$$\\lfloor n - k \\rfloor + 1$$\n\npixels. \"Valid\" means $p = 0$.\n",
        "A new paragraph.\n", "- an item"]


def test_decks_and_site_pages_leave_out_solutions_check_verdicts_and_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(slides, "WEB", tmp_path / "web")
    for name in ("reveal.js", "mathjax"):
        (tmp_path / "web" / name).mkdir(parents=True)
    pair = executed_lesson(tmp_path)
    deck = slides.build_slides([pair], tmp_path / "slides")[0].read_text("utf-8")
    index = publish.build_site([pair], tmp_path / "site", guides=[])
    page = (tmp_path / "site" / "09_tall.html").read_text("utf-8")
    for html in (deck, page):
        assert "hello" in html and "check_answer" in html and "kernel" in html
        assert "cuInit" not in html and "/home/instructor" not in html, "stderr shown"
        assert "the solution&#39;s own output" not in html and "solution's own output" not in html
        assert "sobel_diagonal" not in html, "the solution cell is shown"
        assert "correct." not in html and "✔" not in html, "the check cell's verdict (after the solution) is shown"
        assert "run the check cell below it." in html and "In the lesson as it is committed" not in html
    assert "white-space: pre-wrap" in deck and "overflow-x: auto" in deck
    assert f"max-height: {slides.FIGURE_HEIGHT}px" in deck
    assert "scroll-margin-top" in page and "scroll-margin-top" in index.read_text("utf-8")


def test_a_deck_fits_reveal_js_slides_and_site_headings_clear_the_nav_bar_in_a_real_browser(tmp_path):
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    pair = executed_lesson(tmp_path)
    deck = slides.build_slides([pair], tmp_path / "slides")[0]
    index = publish.build_site([pair], tmp_path / "site", guides=[])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        measured = page.evaluate("""() => Reveal.getSlides().map(slide => {
            const at = Reveal.getIndices(slide); Reveal.slide(at.h, at.v);
            const scrolls = element => { for (; element && element !== slide; element = element.parentElement) {
                if (['auto', 'scroll'].includes(getComputedStyle(element).overflowX)) return true; } return false; };
            return {height: slide.scrollHeight, clipped: [...slide.querySelectorAll('pre')].filter(
                pre => pre.scrollWidth > pre.clientWidth + 1 && !scrolls(pre)).length,
                code: [...slide.querySelectorAll('.highlight pre')].filter(
                    pre => pre.scrollWidth > pre.clientWidth + 1).length,
                figures: [...slide.querySelectorAll('img')].map(image => image.getBoundingClientRect().height /
                    slide.getBoundingClientRect().height * 700)}; })""")
        page.goto(index.as_uri(), wait_until="load")
        page.click("main a[href$='#1.-Figures']")
        page.wait_for_url("**/09_tall.html#1.-Figures", wait_until="load")
        heading, nav = (page.evaluate("([css, side]) => document.querySelector(css).getBoundingClientRect()[side]",
                                      [css, side]) for css, side in (("[id='1.-Figures']", "top"), ("nav", "bottom")))
        browser.close()
    assert len(measured) > 6, "no sub-slides for what does not fit"
    assert [slide["height"] for slide in measured if slide["height"] > 700] == [], "slides taller than reveal.js's"
    assert not any(slide["clipped"] for slide in measured), "code or output runs off the slide's right edge"
    assert not any(slide["code"] for slide in measured), "long lines of code do not wrap"
    assert all(height <= slides.FIGURE_HEIGHT + 1 for slide in measured for height in slide["figures"])
    assert heading >= nav - 1, f"the heading is under the nav bar ({heading} < {nav})"
