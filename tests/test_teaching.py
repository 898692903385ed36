"""docs/teaching.md, the teacher's guide, agrees with the lessons, the benchmarks and the docs it links to.

Fast: it reads Markdown and JSON only (no TensorFlow).
"""

import json
import re
import unicodedata

import pytest

from utils import lessons, paths

GUIDE = paths.ROOT / "docs" / "teaching.md"
TROUBLESHOOTING = paths.ROOT / "docs" / "troubleshooting.md"
LESSON_TIMES = paths.ROOT / "benchmarks" / "results" / "lesson_times.json"  # benchmarks/lesson_times.py
LESSONS = lessons.all_lessons()

SUBHEADINGS = [
    "### Learning objectives",
    "### Prerequisites",
    "### Time",
    "### What to say at each figure",
    "### Common mistakes",
    "### Errors learners meet",
]
MINUTES = re.compile(r"(\d+\.\d) minutes")
SECTION_SAMPLE_TIME = re.compile(r"\*\*Sample mode on a 2-core CPU:\*\* (\d+\.\d) minutes")
QUOTED_MESSAGE = re.compile(r'^- "(?P<message>[^"]+)"', re.MULTILINE)  # how the guide quotes a message
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def guide():
    return GUIDE.read_text(encoding="utf-8")


def lesson_number(path):
    return int(path.stem[:2])


def section(text, number):
    """The text of `## Lesson N: ...`, up to the next `## ` heading."""
    found = re.search(rf"^## Lesson {number}: .*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, f"the guide has no '## Lesson {number}: ...' section"
    return found.group(0)


def table_rows(text):
    """{lesson stem: row} for the rows of the overview table that name a lesson notebook."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|"):
            for path in LESSONS:
                if f"`{path.stem}`" in line.split("|")[1]:
                    rows[path.stem] = line
    return rows


def github_anchor(heading, seen):
    """The anchor GitHub gives a heading: its text without Markdown, lower case, punctuation dropped,
    spaces as hyphens; a repeated anchor gets -1, -2, ..."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "").strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    anchor = text.replace(" ", "-")
    count = seen.get(anchor, 0)
    seen[anchor] = count + 1
    return anchor if count == 0 else f"{anchor}-{count}"


def anchors(markdown):
    """Every anchor GitHub makes for the headings of a Markdown text (outside code blocks)."""
    seen, found, fenced = {}, set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+?)\s*#*\s*$", line)):
            found.add(github_anchor(heading.group(1), seen))
    return found


def test_the_anchor_rule_matches_github_on_known_headings():
    assert github_anchor("Downloading data (`python -m utils.data download NAME`)", {}) == \
        "downloading-data-python--m-utilsdata-download-name"
    assert github_anchor("What `/predict` answers instead of a class", {}) == "what-predict-answers-instead-of-a-class"
    seen = {}
    assert [github_anchor("Time", seen), github_anchor("Time", seen)] == ["time", "time-1"]


def test_the_guide_exists_and_there_are_lessons():
    assert LESSONS and GUIDE.is_file()


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_every_lesson_has_a_section_with_every_subheading_in_order(path):
    text = section(guide(), lesson_number(path))
    assert path.stem in text, f"the section of lesson {lesson_number(path)} should name {path.stem}"
    positions = [text.find(f"\n{heading}\n") for heading in SUBHEADINGS]
    missing = [heading for heading, position in zip(SUBHEADINGS, positions) if position < 0]
    assert not missing, f"lesson {lesson_number(path)} lacks {missing}"
    assert positions == sorted(positions), f"lesson {lesson_number(path)}: sub-headings out of order"


def test_no_section_for_a_lesson_that_does_not_exist():
    numbers = {int(n) for n in re.findall(r"^## Lesson (\d+): ", guide(), re.MULTILINE)}
    assert numbers == {lesson_number(path) for path in LESSONS}


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_the_sample_mode_time_in_the_table_is_within_2x_of_what_the_runner_measured(path):
    measured = json.loads(LESSON_TIMES.read_text())["lessons"][path.stem]
    assert measured["status"] == "ok"
    row = table_rows(guide()).get(path.stem)
    assert row, f"the overview table has no row naming `{path.stem}`"
    stated = MINUTES.search(row.split("|")[2])
    assert stated, f"the table's sample-mode cell for {path.stem} must read 'N.N minutes': {row}"
    minutes, measured_minutes = float(stated.group(1)), measured["seconds"] / 60
    assert measured_minutes / 2 <= minutes <= measured_minutes * 2, (
        f"{path.stem}: the guide says {minutes} minutes, benchmarks/lesson_times.py measured "
        f"{measured_minutes:.1f}")


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_each_section_states_the_same_sample_mode_time_as_the_table(path):
    text = section(guide(), lesson_number(path))
    stated = SECTION_SAMPLE_TIME.search(text)
    assert stated, f"lesson {lesson_number(path)}'s Time must say '**Sample mode on a 2-core CPU:** N.N minutes'"
    in_table = MINUTES.search(table_rows(guide())[path.stem].split("|")[2]).group(1)
    assert stated.group(1) == in_table


def test_every_gpu_figure_is_labelled_an_estimate():
    text = guide()
    header = next(line for line in text.splitlines() if line.startswith("| lesson"))
    assert "GPU (estimate)" in header and "class time (estimate)" in header
    for path in LESSONS:
        time_part = section(text, lesson_number(path)).split("### Time", 1)[1].split("\n### ", 1)[0]
        gpu_lines = [line for line in time_part.splitlines() if "GPU" in line]
        assert gpu_lines and all("estimate" in line for line in gpu_lines), (path.stem, gpu_lines)


def test_every_quoted_message_is_in_the_troubleshooting_page_word_for_word():
    doc = TROUBLESHOOTING.read_text(encoding="utf-8")
    quoted = QUOTED_MESSAGE.findall(guide())
    assert len(quoted) >= len(LESSONS), "the guide should quote the messages learners meet"
    missing = [message for message in quoted if message not in doc]
    assert not missing, "not in docs/troubleshooting.md as written there:\n" + "\n".join(missing)


def test_every_quoted_message_links_to_its_troubleshooting_section():
    for line in guide().splitlines():
        if QUOTED_MESSAGE.match(line):
            assert "](troubleshooting.md#" in line, f"no link to troubleshooting.md#...: {line}"


def markdown_of(document):
    """The Markdown of a .md file, or of a notebook's Markdown cells."""
    if document.suffix != ".ipynb":
        return document.read_text(encoding="utf-8")
    return "\n".join("".join(cell["source"]) for cell in json.loads(document.read_text())["cells"]
                     if cell["cell_type"] == "markdown")


MARKDOWN = sorted({*paths.ROOT.glob("*.md"), *paths.ROOT.glob("*/*.md")} - {*paths.ROOT.glob(".*/*.md")})


@pytest.mark.parametrize("document", [*MARKDOWN, *LESSONS], ids=lambda path: str(path.relative_to(paths.ROOT)))
def test_every_relative_link_and_anchor_resolves(document):
    """Every relative link of the kit's Markdown files and lessons' Markdown cells names a file there, and an anchor
    names one of that file's headings (GitHub's anchors in a Markdown file, JupyterLab's in a lesson)."""
    text = markdown_of(document)
    targets = [match.group("target") for match in LINK.finditer(text)]
    broken = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        file = (document.parent / file_part).resolve() if file_part else document
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading in {file.name} gives #{anchor}")
        elif anchor and file.suffix == ".ipynb" and anchor not in {  # JupyterLab's and nbconvert's: spaces as -
                line.lstrip("#").strip().replace(" ", "-") for line in markdown_of(file).splitlines()
                if re.match(r"#{1,6} ", line)}:
            broken.append(f"{target}: no heading in {file.name} gives #{anchor}")
    assert not broken, "\n".join(broken)
