"""Every lesson keeps the kit's conventions and runs top to bottom in smoke mode."""

import json
import pathlib
import re
import shutil

import nbformat
import pytest

from utils import exercises, lessons, paths, runs

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
REQUIRED_SECTIONS = ["## Setup", "## Parameters", "## Summary", "## Exercises", "## References"]
SAMPLE_TIME = re.compile(r"\*\*Time:\*\* (?:about )?(\d+(?:\.\d+)?) minutes? in sample mode on a 2-core CPU")
LESSON_TIMES = paths.ROOT / "benchmarks" / "results" / "lesson_times.json"  # benchmarks/lesson_times.py
WHERE_FROM = "Where the figures at the top come from"  # the section the introduction's table of times links to


def lesson_id(path):
    return path.stem


def test_there_are_lessons():
    assert LESSONS, f"no lesson notebooks found in {paths.NOTEBOOKS}"


def test_every_notebook_in_notebooks_is_a_numbered_lesson():
    names = [path.name for path in paths.NOTEBOOKS.glob("*.ipynb")]
    assert names and all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name) for name in names), names


@pytest.mark.parametrize("path", LESSONS, ids=lesson_id)
class TestConventions:
    def test_is_a_valid_notebook_with_cell_ids(self, path):
        # Jupyter refuses to open a 4.4 notebook whose cells carry ids ("'id' was unexpected"): 4.5, ids on all
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
        assert (notebook.nbformat, notebook.nbformat_minor) >= (4, 5), "cell ids need nbformat 4.5"
        assert all("id" in cell for cell in notebook.cells), "every cell needs an id"

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

    def test_states_its_sample_mode_time_within_2x_of_what_the_runner_measured(self, path):
        introduction = nbformat.read(path, as_version=4).cells[0].source
        stated = SAMPLE_TIME.search(introduction)
        assert stated, "the introduction must say '**Time:** N minutes in sample mode on a 2-core CPU'"
        measured = json.loads(LESSON_TIMES.read_text())["lessons"][path.stem]
        assert measured["status"] == "ok", measured
        ratio = float(stated.group(1)) * 60 / measured["seconds"]
        assert 0.5 <= ratio <= 2, (f"states {stated.group(1)} min, the runner measured "
                                   f"{measured['seconds'] / 60:.1f} min: run benchmarks/lesson_times.py and update it")

    def test_introduction_has_a_table_of_times_and_links_to_their_sources(self, path):
        notebook = nbformat.read(path, as_version=4)
        introduction = notebook.cells[0].source
        header = next((line for line in introduction.splitlines() if line.startswith("| run |")), "")
        assert "CPU" in header and "GPU" in header, "the introduction needs a table: | run | 2-core CPU | GPU |"
        assert f"(#{WHERE_FROM.replace(' ', '-')})" in introduction, f"the introduction must link to {WHERE_FROM!r}"
        headings = [line for cell in notebook.cells[1:] if cell.cell_type == "markdown"
                    for line in cell.source.splitlines() if line.lstrip("#").strip() == WHERE_FROM]
        assert len(headings) == 1 and headings[0].startswith(("## ", "### ")), headings

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
        declared = set(lessons.declared_defaults(notebook))
        assert {"SAMPLE", "SEED"} <= declared, declared
        smoke = notebook.metadata.get("course", {}).get("smoke", {})
        assert set(smoke) <= declared, f"smoke parameters not declared: {set(smoke) - declared}"

    def test_papermill_reads_every_parameter(self, path):
        import papermill  # `papermill --help-notebook` lists these; a name it cannot read it calls unknown when set

        declared = set(lessons.declared_defaults(nbformat.read(path, as_version=4)))
        assert declared == set(papermill.inspect_notebook(str(path))), (
            "papermill could not read some parameter lines (an '=' in a comment confuses it)")

    def test_uses_no_removed_keras_apis(self, path):
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        used = [name for name, pattern in REMOVED_APIS.items() if re.search(pattern, code)]
        assert not used, f"removed or discouraged APIs: {used}"


def test_all_lessons_in_sample_mode_took_at_most_10_minutes_as_measured():
    report = json.loads(LESSON_TIMES.read_text())
    assert set(report["lessons"]) == {path.stem for path in LESSONS}, "re-run benchmarks/lesson_times.py"
    assert report["total_seconds"] <= 600, f"make lessons took {report['total_seconds'] / 60:.1f} minutes"


def test_utils_uses_no_removed_keras_apis():
    for module in (paths.ROOT / "utils").glob("*.py"):
        code = module.read_text()
        used = [name for name, pattern in REMOVED_APIS.items() if re.search(pattern, code)]
        assert not used, f"{module.name}: {used}"


def test_every_utils_module_reads_in_one_sitting():
    lines = {path.name: len(path.read_text().splitlines()) for path in (paths.ROOT / "utils").glob("*.py")}
    long = {name: count for name, count in lines.items() if count > 300}
    assert not long, f"over 300 lines: {long}"


def plant_full_run(lesson):
    """A finished full run of `lesson`, as a learner's GPU session would leave it."""
    run = runs.start(lesson, sample=False)
    run.model_path.write_bytes(b"a model trained for hours")
    (run.folder / "metrics.json").write_text('{"test_accuracy": 0.5}')
    runs.finish(run, 0.5, "test_accuracy")
    return run


@pytest.mark.notebook
@pytest.mark.parametrize("path", LESSONS, ids=lesson_id)
def test_lesson_runs_top_to_bottom_in_smoke_mode(path, tmp_path, monkeypatch, executed_lessons):
    # the kernel inherits these: smoke runs never write into a learner's data/ or models/
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws figures inline, as in JupyterLab
    full_run = plant_full_run(path.stem)
    before = {p.name: p.read_bytes() for p in full_run.folder.iterdir()}
    result = lessons.run(path, out_dir=tmp_path / "out", smoke=True, html=False, progress=False)
    assert result.status == "ok", result.error
    shutil.copy2(result.output, executed_lessons / path.name)  # tests/test_publish.py builds slides and the site from it
    assert result.headline, "the lesson never called lessons.headline(...)"
    print(f"{path.stem}: {result.seconds:.0f} s in smoke mode; {result.headline}")
    # every exercise's check ran after its solution, in the lesson's own state, and said "correct"
    checks = [output["data"][exercises.CHECK_MIMETYPE] for cell in nbformat.read(result.output, as_version=4).cells
              for output in cell.get("outputs", []) if exercises.CHECK_MIMETYPE in output.get("data", {})]
    assert len(checks) >= 3, f"{len(checks)} exercise checks ran"
    assert all(check["correct"] for check in checks), [check["message"] for check in checks if not check["correct"]]
    learner_models = paths.ROOT / "models" / path.stem
    assert not learner_models.exists() or all(
        file.stat().st_mtime < result.started for file in learner_models.rglob("*")), \
        f"the smoke run wrote into {learner_models}"
    # the smoke run is a sample run in a folder of its own: the full run is byte-identical, still the best
    assert {p.name: p.read_bytes() for p in full_run.folder.iterdir()} == before
    assert runs.best(path.stem).folder == full_run.folder


@pytest.mark.notebook
def test_lesson_6_ships_lesson_5s_model_rebuilding_its_split_with_the_runs_seed(tmp_path, monkeypatch):
    # exercise 6.7: lesson 6 with a lesson-5 run, and a SEED other than the run's
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    birds = lessons.run(paths.NOTEBOOKS / "05_bird_classifier.ipynb", out_dir=tmp_path / "out", smoke=True,
                        html=False, progress=False)
    assert birds.status == "ok", birds.error
    shipped = lessons.run(paths.NOTEBOOKS / "06_ship_it.ipynb", {"MODEL": "05_bird_classifier", "SEED": 1,
                                                                  "SAMPLE": False},
                          out_dir=tmp_path / "out", smoke=True, html=False, progress=False)
    assert shipped.status == "ok", shipped.error
    printed = "".join(output.get("text", "") for cell in nbformat.read(shipped.output, as_version=4).cells
                      for output in cell.get("outputs", []))
    assert "lesson 5's run used SEED = 0: its split is rebuilt with that seed, not 1." in printed
    assert "shipping " in printed and "05_bird_classifier" in printed
    # SAMPLE = False, but lesson 5's run was a sample run: its images decide, and lesson 6's run says sample
    assert "lesson 5's run was a sample run: measuring on its validation images, so SAMPLE = True here." in printed
    shipping_run = runs.latest("06_ship_it")
    assert shipping_run.mode == "sample"
    assert json.loads((shipping_run.folder / "metrics.json").read_text())["sample"] is True


@pytest.mark.notebook
def test_lesson_6_says_in_one_line_what_is_wrong_with_a_model_it_cannot_ship(tmp_path, monkeypatch):
    """MODEL takes what `utils.serve --model` takes, and is refused as it refuses it: a typo is not "no finished
    run", and lesson 3's folder somewhere else is not lesson 3 without a run (a small network trained instead)."""
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    for model, words in [("03_cnn_from_scrach", "raised FileNotFoundError: no lesson called 03_cnn_from_scrach: pass "),
                         (str(paths.ROOT / "README.md"), "is neither a .keras model file nor a lesson's folder"),
                         (str(tmp_path / "elsewhere" / "03_cnn_from_scratch"),
                          "raised FileNotFoundError: no model at")]:
        shipped = lessons.run(paths.NOTEBOOKS / "06_ship_it.ipynb", {"MODEL": model}, out_dir=tmp_path / "out",
                              smoke=True, html=False, progress=False)
        assert shipped.status == "failed" and words in shipped.error, shipped.error
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("*.keras"))


@pytest.mark.notebook
def test_lesson_6_measures_lesson_3s_run_on_that_runs_own_validation_photos(tmp_path, monkeypatch):
    # lesson 3 with SEED 1, then lesson 6 with its defaults (SEED 0): measuring on SEED 0's split would score the
    # model partly on photos it trained on
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    pets = lessons.run(paths.NOTEBOOKS / "03_cnn_from_scratch.ipynb", {"SEED": 1}, out_dir=tmp_path / "out",
                       smoke=True, html=False, progress=False)
    assert pets.status == "ok", pets.error
    trained = json.loads((runs.latest("03_cnn_from_scratch").folder / "metrics.json").read_text())
    assert trained["seed"] == 1 and pathlib.Path(trained["data_dir"]).name.startswith("seed1-")
    shipped = lessons.run(paths.NOTEBOOKS / "06_ship_it.ipynb", out_dir=tmp_path / "out", smoke=True, html=False,
                          progress=False)
    assert shipped.status == "ok", shipped.error
    printed = "".join(output.get("text", "") for cell in nbformat.read(shipped.output, as_version=4).cells
                      for output in cell.get("outputs", []))
    assert "with SEED = 1: measuring on its validation photos, whatever DATA_DIR and SEED say here." in printed
    assert f"Using {trained['data_dir']} (already organized" in printed  # the very layout lesson 3 trained from


@pytest.mark.notebook
def test_lesson_1_refuses_a_photo_too_small_or_without_edges_in_section_1(tmp_path):
    """IMAGE_WIDTH 6 failed in an exercise's solution at the end; a flat photo gave "weight error nan", no error."""
    import PIL.Image

    PIL.Image.new("RGB", (60, 40), (90, 120, 150)).save(tmp_path / "flat.png")
    for parameters, words in [({"IMAGE_WIDTH": 6}, "ValueError: IMAGE_WIDTH = 6 makes the photo 6×4 pixels: use a "),
                              ({"IMAGE_PATH": str(tmp_path / "flat.png")}, "ValueError: the photo is one flat shade")]:
        result = lessons.run(paths.NOTEBOOKS / "01_convolution_filters.ipynb", parameters, out_dir=tmp_path / "out",
                             html=False, progress=False)
        assert result.status == "failed" and result.error.startswith("cell 6 ") and words in result.error, result.error


@pytest.mark.notebook
def test_lesson_2_refuses_counts_below_1_before_it_trains(tmp_path, monkeypatch):
    """SHIFTED_COPIES 0 ended in a Keras error about validation_split, SLIDING_DIGITS 0 in a ZeroDivisionError."""
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    for name in ("SHIFTED_COPIES", "SLIDING_DIGITS"):
        result = lessons.run(paths.NOTEBOOKS / "02_fc_vs_cnn.ipynb", {name: 0}, out_dir=tmp_path / "out", smoke=True,
                             html=False, progress=False)
        assert result.status == "failed" and result.error.startswith("cell 6 ") and result.error.endswith(
            f"raised ValueError: {name} = 0: use 1 or more."), result.error
        assert result.seconds < 60


def smoke_run(lesson, parameters, tmp_path, monkeypatch):
    """`lesson` run in smoke mode with `parameters`, its data and models in `tmp_path`: the runner's result."""
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    return lessons.run(paths.NOTEBOOKS / f"{lesson}.ipynb", parameters, out_dir=tmp_path / "out", smoke=True,
                       html=False, progress=False)


@pytest.mark.notebook
def test_lesson_4_refuses_0_epochs_before_its_pass_over_the_photos(tmp_path, monkeypatch):
    """HEAD_EPOCHS 0 was refused by training.fit in cell 20, after the features were extracted (minutes to an hour)."""
    result = smoke_run("04_vgg16_finetune", {"HEAD_EPOCHS": 0}, tmp_path, monkeypatch)
    assert result.status == "failed" and result.error.startswith("cell 5 ") and result.error.endswith(
        "raised ValueError: HEAD_EPOCHS = 0: use 1 or more."), result.error
    assert not (tmp_path / "data").exists()  # nothing drawn or organized: it stopped first


@pytest.mark.notebook
def test_lesson_3_refuses_settings_that_cannot_work_before_it_trains(tmp_path, monkeypatch):
    """IMAGE_SIZE 16 trained the baseline for minutes, then failed inside Keras on the improved network's pooling."""
    result = smoke_run("03_cnn_from_scratch", {"IMAGE_SIZE": 16}, tmp_path, monkeypatch)
    assert result.status == "failed" and result.error.startswith("cell 5 ") and result.error.endswith(
        "raised ValueError: IMAGE_SIZE = 16: use at least 32: the improved network halves the photo five times."), \
        result.error
    assert not (tmp_path / "data").exists()  # nothing drawn or organized: it stopped first
    (tmp_path / "notes.txt").write_text("not a photo")  # your photo, read at the end: checked before training too
    result = lessons.run(paths.NOTEBOOKS / "03_cnn_from_scratch.ipynb", {"IMAGE_PATH": str(tmp_path / "notes.txt")},
                         out_dir=tmp_path / "out", smoke=True, html=False, progress=False)
    assert result.status == "failed" and result.error.startswith("cell 5 ") and (
        f"raised ValueError: IMAGE_PATH = '{tmp_path / 'notes.txt'}': {tmp_path / 'notes.txt'} is not an image this "
        "kit can read") in result.error, result.error


@pytest.mark.notebook
def test_lesson_3_trains_on_a_learners_own_folder_of_three_classes(tmp_path, monkeypatch):
    """`make_baseline` and `make_improved` have one output per class folder, not two for cats and dogs."""
    import numpy as np
    import PIL.Image

    from utils import synth

    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    drawn, mine = tmp_path / "drawn", tmp_path / "mine"
    synth.toy_pets(drawn, 60, test_count=0, progress=False)
    for path in sorted((drawn / "train").iterdir()):
        (mine / f"{path.name.split('.')[0]}s").mkdir(parents=True, exist_ok=True)
        path.rename(mine / f"{path.name.split('.')[0]}s" / path.name)
    birds, labels = synth.toy_birds(60, progress=False)
    (mine / "birds").mkdir()
    for index in np.flatnonzero(labels)[:15]:
        PIL.Image.fromarray(birds[index]).save(mine / "birds" / f"{index}.png")
    result = lessons.run(paths.NOTEBOOKS / "03_cnn_from_scratch.ipynb", {"DATA_DIR": str(mine)},
                         out_dir=tmp_path / "out", smoke=True, html=False, progress=False)
    assert result.status == "ok", result.error
    metrics = json.loads((runs.latest("03_cnn_from_scratch").folder / "metrics.json").read_text())
    assert sorted(metrics["class_counts"]) == ["birds", "cats", "dogs"] and metrics["dataset"] == "mine"
