"""Run folders: every run gets its own, and a sample run never replaces the best full run."""

import json

import pytest

from utils import paths, runs, safely


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    return tmp_path / "models"


def fake_run(sample, score, model=b"model", stand_in=False):
    run = runs.start("03_cnn_from_scratch", sample=sample)
    run.model_path.write_bytes(model)
    (run.folder / "metrics.json").write_text(json.dumps({"test_accuracy": score}))
    runs.finish(run, score, "test_accuracy", stand_in=stand_in)
    return run


def test_each_run_gets_a_new_folder(models):
    first, second = runs.start("03_cnn_from_scratch", True), runs.start("03_cnn_from_scratch", True)
    assert first.folder != second.folder and first.folder.is_dir() and second.folder.is_dir()
    assert first.folder.parent == models / "03_cnn_from_scratch" / "runs"
    assert first.name.endswith("-sample") and first.mode == "sample"
    assert runs.start("03_cnn_from_scratch", False).name.split("-")[2] == "full"


def test_sample_runs_never_become_the_best_and_never_touch_a_full_run(models):
    full = fake_run(sample=False, score=0.9, model=b"full model")
    before = {p.name: p.read_bytes() for p in full.folder.iterdir()}
    sample = fake_run(sample=True, score=0.99)
    assert runs.latest("03_cnn_from_scratch").folder == sample.folder
    assert runs.best("03_cnn_from_scratch").folder == full.folder
    assert {p.name: p.read_bytes() for p in full.folder.iterdir()} == before
    path, note = runs.best_model("03_cnn_from_scratch")
    assert path == full.model_path and "best full run" in note and full.name in note


def test_the_lesson_folder_keeps_a_copy_of_the_latest_full_runs_metrics(models):
    copy = models / "03_cnn_from_scratch" / "metrics.json"
    fake_run(sample=True, score=0.6)
    assert not copy.exists()
    fake_run(sample=False, score=0.9)
    fake_run(sample=False, score=0.8)
    assert json.loads(copy.read_text()) == {"test_accuracy": 0.8}
    fake_run(sample=True, score=0.99)
    assert json.loads(copy.read_text()) == {"test_accuracy": 0.8}


def test_a_full_run_on_the_stand_in_never_becomes_the_best(models):
    real = fake_run(sample=False, score=0.8)
    fake_run(sample=False, score=1.0, stand_in=True)
    assert runs.best("03_cnn_from_scratch").folder == real.folder
    assert json.loads((models / "03_cnn_from_scratch" / "metrics.json").read_text()) == {"test_accuracy": 0.8}


def test_the_best_full_run_is_kept_by_its_score(models):
    good = fake_run(sample=False, score=0.93)
    fake_run(sample=False, score=0.88)
    assert runs.best("03_cnn_from_scratch").folder == good.folder
    better = fake_run(sample=False, score=0.95)
    index = json.loads((models / "03_cnn_from_scratch" / "runs.json").read_text())
    assert index["best"] == f"runs/{better.name}" and index["best_score"] == 0.95
    assert index["best_by"] == "test_accuracy"
    fake_run(sample=False, score=0.95)  # a tie: the run that scored it first stays the best
    assert runs.best("03_cnn_from_scratch").folder == better.folder


def test_without_a_full_run_the_latest_sample_run_is_used_and_said_so(models):
    assert runs.best_model("03_cnn_from_scratch")[0] is None
    sample = fake_run(sample=True, score=0.7)
    path, note = runs.best_model("03_cnn_from_scratch")
    assert path == sample.model_path and "sample" in note and "stand-in" not in note
    drawn = fake_run(sample=True, score=0.99, stand_in=True)
    path, note = runs.best_model("03_cnn_from_scratch")  # utils.predict and utils.serve print it
    assert path == drawn.model_path
    assert note.endswith("(sample mode), a stand-in run: its answers say nothing about real photos")
    (drawn.folder / runs.RECORD).write_text("[]")  # a record that is not one: nothing said, and no error
    assert runs.best_model("03_cnn_from_scratch") == (drawn.model_path, f"the latest run, {drawn.name} (sample mode)")


def test_a_model_from_before_run_folders_is_still_found(models):
    legacy = models / "03_cnn_from_scratch" / "best.keras"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"old")
    assert runs.best_model("03_cnn_from_scratch") == (legacy, "a model saved by an earlier version of the kit")


def test_data_and_models_paths_follow_the_course_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path / "d")
    monkeypatch.setattr(paths, "MODELS", tmp_path / "m")
    assert paths.resolve("data/dogscats") == tmp_path / "d" / "dogscats"
    assert paths.resolve("models/03_cnn_from_scratch") == tmp_path / "m" / "03_cnn_from_scratch"
    assert paths.resolve("notebooks/x.ipynb") == paths.ROOT / "notebooks" / "x.ipynb"
    assert paths.resolve(tmp_path / "photos") == tmp_path / "photos"


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text('{"test_accuracy": 0.9}')

    def interrupted(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(paths.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        safely.write_text(path, '{"test_accuracy": 0.1, "half": ')
    assert path.read_text() == '{"test_accuracy": 0.9}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    monkeypatch.undo()
    safely.write_text(path, "{}")
    assert path.read_text() == "{}"


DAMAGED_INDEXES = ["", '{"latest": "runs/x", "be', "[1, 2]", '{"best": 5}', '{"latest": ["runs"]}',
                   '{"best": "runs/../../elsewhere"}', '{"best": "runs/a", "best_score": "high"}']


@pytest.mark.parametrize("damage", DAMAGED_INDEXES)
def test_a_damaged_index_is_moved_aside_and_rebuilt_from_the_run_folders(models, damage, capsys):
    best = fake_run(sample=False, score=0.9)
    fake_run(sample=False, score=0.8)
    fake_run(sample=False, score=1.0, stand_in=True)
    sample = fake_run(sample=True, score=0.99)
    index = models / "03_cnn_from_scratch" / "runs.json"
    index.write_text(damage)
    capsys.readouterr()
    assert runs.best("03_cnn_from_scratch").folder == best.folder
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and note.startswith(f"note: {index} was damaged (")
    assert f"the best full run is {best.name}" in note
    aside = list(index.parent.glob("runs.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == damage and aside[0].name in note
    rebuilt = json.loads(index.read_text())  # saved: the next reader trusts it and says nothing
    assert rebuilt["best"] == f"runs/{best.name}" and rebuilt["best_score"] == 0.9
    assert rebuilt["best_by"] == "test_accuracy" and rebuilt["latest"] == f"runs/{sample.name}"
    assert runs.latest("03_cnn_from_scratch").folder == sample.folder
    path, _ = runs.best_model("03_cnn_from_scratch")
    assert path == best.model_path and capsys.readouterr().err == ""


def test_a_sample_run_finished_after_a_damaged_index_leaves_the_full_run_the_best(models, capsys):
    full = fake_run(sample=False, score=0.7)
    index = models / "03_cnn_from_scratch" / "runs.json"
    index.write_text('{"latest": "runs/')
    sample = fake_run(sample=True, score=0.99)
    rebuilt = json.loads(index.read_text())
    assert rebuilt["best"] == f"runs/{full.name}" and rebuilt["best_score"] == 0.7
    assert rebuilt["latest"] == f"runs/{sample.name}"
    assert runs.best_model("03_cnn_from_scratch")[0] == full.model_path
    assert len(list(index.parent.glob("runs.json.damaged-*"))) == 1 and "was damaged" in capsys.readouterr().err
    better = fake_run(sample=False, score=0.8)  # the rebuilt index keeps scoring as before
    assert runs.best("03_cnn_from_scratch").folder == better.folder


def test_a_second_damage_is_moved_aside_too_and_nothing_is_overwritten(models, capsys):
    fake_run(sample=False, score=0.7)
    index = models / "03_cnn_from_scratch" / "runs.json"
    for damage in ("first", "second"):
        index.write_text(damage)
        runs.best("03_cnn_from_scratch")
    assert sorted(p.read_text() for p in index.parent.glob("runs.json.damaged-*")) == ["first", "second"]


def test_a_missing_index_is_rebuilt_quietly_and_unfinished_runs_are_left_out(models, capsys):
    full = fake_run(sample=False, score=0.7)
    crashed = runs.start("03_cnn_from_scratch", sample=False)  # saved a model, never finished
    crashed.model_path.write_bytes(b"half trained")
    (models / "03_cnn_from_scratch" / "runs.json").unlink()
    assert runs.best("03_cnn_from_scratch").folder == full.folder
    assert runs.latest("03_cnn_from_scratch").folder == full.folder
    assert capsys.readouterr().err == ""


def test_runs_finished_before_scores_were_recorded_are_still_found(models, capsys):
    old_full = fake_run(sample=False, score=0.9)
    old_sample = fake_run(sample=True, score=0.99)
    for run in (old_full, old_sample):  # kits before the record left only the lesson's files
        (run.folder / runs.RECORD).unlink()
    index = models / "03_cnn_from_scratch" / "runs.json"
    index.write_text("{")
    assert runs.best_model("03_cnn_from_scratch")[0] == old_full.model_path
    assert runs.latest("03_cnn_from_scratch").folder == old_sample.folder
    newer = fake_run(sample=False, score=0.5)  # a recorded score beats an unknown one
    assert runs.best("03_cnn_from_scratch").folder == newer.folder


def test_a_damaged_index_that_cannot_be_moved_aside_is_left_as_it_is(models, monkeypatch, capsys):
    best = fake_run(sample=False, score=0.7)
    index = models / "03_cnn_from_scratch" / "runs.json"
    index.write_text("{")

    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runs.os, "rename", refused)
    assert runs.best("03_cnn_from_scratch").folder == best.folder
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and "could not be moved aside (Permission denied)" in note
    assert index.read_text() == "{" and not list(index.parent.glob("runs.json.damaged-*"))
