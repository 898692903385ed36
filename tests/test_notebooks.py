"""Every lesson keeps the kit's conventions and runs top to bottom in smoke mode."""

import re

import nbformat
import pytest

from utils import lessons, paths

LESSONS = lessons.all_lessons()
REMOVED_APIS = {
    "fit_generator": r"\bfit_generator\b",
    "ImageDataGenerator": r"\bImageDataGenerator\b",
    "keras.preprocessing.image": r"keras\.preprocessing\.image",
    "lr= (use learning_rate=)": r"\blr\s*=",
    "nb_epoch": r"\bnb_epoch\b",
    "compat.v1": r"\bcompat\.v1\b",
    "star import from utils": r"from utils import \*",
}
REQUIRED_SECTIONS = ["## Setup", "## Parameters", "## Summary", "## Exercises"]


def lesson_id(path):
    return path.stem


def test_there_are_lessons():
    assert LESSONS, f"no lesson notebooks found in {paths.NOTEBOOKS}"


def test_every_notebook_in_notebooks_is_a_numbered_lesson():
    names = [path.name for path in paths.NOTEBOOKS.glob("*.ipynb")]
    assert names and all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name) for name in names), names


@pytest.mark.parametrize("path", LESSONS, ids=lesson_id)
class TestConventions:
    def test_has_no_outputs_or_execution_counts(self, path):
        notebook = nbformat.read(path, as_version=4)
        dirty = [index for index, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
        assert not dirty, f"cells {dirty} have outputs: run `make clean-notebooks`"

    def test_has_one_title_and_an_introduction_with_times(self, path):
        notebook = nbformat.read(path, as_version=4)
        markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
        titles = [line for text in markdown for line in text.splitlines() if line.startswith("# ")]
        assert len(titles) == 1, titles
        introduction = markdown[0]
        assert introduction.startswith("# ")
        for word in ("You will build", "CPU", "GPU", "Data"):
            assert word in introduction, f"the introduction does not say {word!r}"

    def test_has_the_lesson_skeleton_in_order(self, path):
        notebook = nbformat.read(path, as_version=4)
        headings = [line.strip() for cell in notebook.cells if cell.cell_type == "markdown"
                    for line in cell.source.splitlines() if line.startswith("## ")]
        positions = []
        for section in REQUIRED_SECTIONS:
            matches = [index for index, heading in enumerate(headings) if heading.startswith(section)]
            assert matches, f"no {section!r} section"
            positions.append(matches[0])
        assert positions == sorted(positions), "sections out of order"

    def test_has_exactly_one_parameters_cell_with_sample_and_seed(self, path):
        notebook = nbformat.read(path, as_version=4)
        tagged = [cell for cell in notebook.cells
                  if "parameters" in cell.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1
        declared = lessons.declared_parameters(notebook)
        assert {"SAMPLE", "SEED"} <= declared, declared
        smoke = notebook.metadata.get("course", {}).get("smoke", {})
        assert set(smoke) <= declared, f"smoke parameters not declared: {set(smoke) - declared}"

    def test_uses_no_removed_keras_apis(self, path):
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        used = [name for name, pattern in REMOVED_APIS.items() if re.search(pattern, code)]
        assert not used, f"removed or discouraged APIs: {used}"


def test_utils_uses_no_removed_keras_apis():
    for module in (paths.ROOT / "utils").glob("*.py"):
        code = module.read_text()
        used = [name for name, pattern in REMOVED_APIS.items() if re.search(pattern, code)]
        assert not used, f"{module.name}: {used}"


@pytest.mark.notebook
@pytest.mark.parametrize("path", LESSONS, ids=lesson_id)
def test_lesson_runs_top_to_bottom_in_smoke_mode(path, tmp_path, monkeypatch):
    # the kernel inherits this: smoke runs never overwrite a learner's models/
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    result = lessons.run(path, out_dir=tmp_path, smoke=True, html=False, progress=False)
    assert result.status == "ok", result.error
    assert result.headline, "the lesson never called lessons.headline(...)"
    print(f"{path.stem}: {result.seconds:.0f} s in smoke mode; {result.headline}")
    learner_models = paths.ROOT / "models" / path.stem
    assert not learner_models.exists() or all(
        file.stat().st_mtime < result.started for file in learner_models.rglob("*")), \
        f"the smoke run wrote into {learner_models}"
