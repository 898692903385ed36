"""The lesson runner: parameters, bad input, failure reports, cleaning."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from utils import copies, interrupts, lessons, paths


def make_notebook(path, *sources, parameters="SAMPLE = True\nSEED = 0\nEPOCHS: int = 3\n",
                  smoke=None):
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=[cell] + [nbformat.v4.new_code_cell(source)
                                                        for source in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                       "display_name": "Python 3"}
    notebook.metadata["course"] = {"smoke": smoke or {}}
    nbformat.write(notebook, path)
    return path


def test_declared_defaults_reads_plain_and_annotated_assignments(tmp_path):
    notebook = nbformat.read(make_notebook(tmp_path / "00_x.ipynb"), as_version=4)
    assert set(lessons.declared_defaults(notebook)) == {"SAMPLE", "SEED", "EPOCHS"}


@pytest.mark.parametrize("text, value", [("False", False), ("30", 30), ("0.5", 0.5),
                                         ("/data/dogs", "/data/dogs"), ("None", None),
                                         ("'quoted'", "quoted"), ("[1, 2]", [1, 2])])
def test_parameter_values_are_python_literals_or_strings(text, value):
    assert lessons.parse_value(text) == value


@pytest.mark.parametrize("text, value", [("false", False), ("FALSE", False), ("no", False), ("True", True),
                                         ("yes", True), ("1", True), ("0", False)])
def test_boolean_parameters_accept_words_in_any_case(tmp_path, text, value):
    path = make_notebook(tmp_path / "01_lesson.ipynb")
    notebook = nbformat.read(path, as_version=4)
    parameters = lessons.lesson_parameters(path, notebook, {"SAMPLE": lessons.parse_value(text)}, smoke=False)
    assert parameters["SAMPLE"] is value


@pytest.mark.parametrize("name, text, expected", [("SAMPLE", "maybe", "True or False"),
                                                  ("EPOCHS", "ten", "a whole number"),
                                                  ("EPOCHS", "2.5", "a whole number"),
                                                  ("MINUTES", "soon", "a number")])
def test_a_parameter_of_the_wrong_type_is_refused_before_anything_runs(tmp_path, capsys, name, text, expected):
    path = make_notebook(tmp_path / "01_lesson.ipynb",
                         parameters="SAMPLE = True\nSEED = 0\nEPOCHS: int = 3\nMINUTES = 1.5\n")
    assert lessons.main(["run", str(path), "-p", name, text, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"-p {name} " in error and expected in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_numbers_are_converted_to_the_defaults_type(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb",
                         parameters="EPOCHS = 3\nMINUTES = 1.5\nDATA_DIR = 'data'\nIMAGE_PATH = None\n")
    notebook = nbformat.read(path, as_version=4)
    given = {"EPOCHS": 4.0, "MINUTES": 2, "DATA_DIR": 123, "IMAGE_PATH": "cat.jpg"}
    assert lessons.lesson_parameters(path, notebook, given, smoke=False) == {
        "EPOCHS": 4, "MINUTES": 2.0, "DATA_DIR": "123", "IMAGE_PATH": "cat.jpg"}
    assert lessons.lesson_parameters(path, notebook, {"DATA_DIR": None}, smoke=False) == {"DATA_DIR": None}
    assert isinstance(lessons.lesson_parameters(path, notebook, given, smoke=False)["MINUTES"], float)


def test_runner_rejects_a_path_that_is_not_a_notebook(tmp_path, capsys):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    assert lessons.main(["run", str(text_file)]) == 2
    assert f"{text_file} is not a notebook file: give the path of a lesson's .ipynb file" in capsys.readouterr().err
    assert lessons.main(["run", str(tmp_path / "missing.ipynb")]) == 2
    assert f"{tmp_path / 'missing.ipynb'} does not exist: give the path" in capsys.readouterr().err


def test_runner_rejects_a_corrupt_notebook(tmp_path, capsys):
    broken = tmp_path / "01_broken.ipynb"
    broken.write_text("{ not json")
    assert lessons.main(["run", str(broken)]) == 2
    err = capsys.readouterr().err  # with what to do next: it named the problem only
    assert err.startswith(f"error: {broken} is not a readable notebook (") and err.count("\n") == 1
    assert err.endswith("): put a good copy back (`git checkout` for the kit's own; JupyterLab keeps one in "
                        ".ipynb_checkpoints/), or give another.\n")


def test_runner_rejects_a_parameter_the_notebook_does_not_declare(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb")
    assert lessons.main(["run", str(path), "-p", "EPOCH", "3", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "has no parameter EPOCH" in error and "EPOCHS, SAMPLE, SEED" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.notebook
def test_run_injects_parameters_and_collects_the_headline(tmp_path):
    path = make_notebook(
        tmp_path / "01_lesson.ipynb",
        "from utils import lessons\nlessons.headline(f'{EPOCHS} epochs, sample={SAMPLE}')",
        smoke={"EPOCHS": 1})
    out = tmp_path / "out"
    result = lessons.run(path, {"SAMPLE": False}, out_dir=out, smoke=True, progress=False)
    assert result.status == "ok", result.error
    assert result.headline == "1 epochs, sample=False"
    assert result.output == out / "01_lesson.ipynb" and result.output.exists()
    assert "1 epochs, sample=False" in result.html.read_text()
    table = lessons.format_table([result])
    assert "01_lesson" in table and "ok" in table and "1 epochs" in table


def test_a_run_removes_the_unfinished_copy_a_killed_run_left_and_leaves_a_live_runs(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1")
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed = out / f".01_lesson.running-{gone.pid}.ipynb"
        other = out / f".01_lesson.running-{live.pid}.ipynb"
        unrelated = out / f".02_lesson.running-{gone.pid}.ipynb"
        for left in (killed, other, unrelated):
            left.write_text("{}")
        assert lessons.run(path, out_dir=out, html=False, progress=False).status == "ok"
        assert not killed.exists()
        assert other.exists() and unrelated.exists()  # another run's, still going; another lesson's
    finally:
        live.kill()
        live.wait()


def test_another_users_unfinished_copy_is_left_alone(tmp_path, monkeypatch):
    # as root, os.kill never refuses; another user's live process answers PermissionError
    mine, theirs = tmp_path / ".01_lesson.running-11.ipynb", tmp_path / ".01_lesson.running-22.ipynb"
    for left in (mine, theirs):
        left.write_text("{}")

    def kill(pid, signal_number):
        raise ProcessLookupError if pid == 11 else PermissionError

    monkeypatch.setattr(os, "kill", kill)
    copies.remove_stale_running(tmp_path / "01_lesson.ipynb")
    assert not mine.exists() and theirs.exists()


def test_a_progress_bar_leaves_one_line_in_the_executed_copy_and_its_page(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb",
                         "import sys, tqdm\nfor _ in tqdm.tqdm(range(50), desc='drawing', mininterval=0, file=sys.stdout):\n"
                         "    sys.stdout.flush()\nprint('done')")
    result = lessons.run(path, out_dir=tmp_path / "out", progress=False)
    assert result.status == "ok", result.error
    outputs = nbformat.read(result.output, as_version=4).cells[1].outputs
    assert [output.output_type for output in outputs] == ["stream"]
    lines = outputs[0].text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("drawing: 100%") and lines[1] == "done", lines
    assert result.html.read_text().count("drawing:") == 1


@pytest.mark.notebook
def test_a_failing_cell_is_named_in_the_report_and_the_exit_status(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1",
                         "values = [1, 2]\nvalues[5]", "print('never')")
    status = lessons.main(["run", str(path), "--out", str(tmp_path / "out"), "--no-html"])
    captured = capsys.readouterr()
    assert status == 1
    assert "cell 2 (`values = [1, 2]`) raised IndexError" in captured.err
    assert "failed" in captured.out
    executed = json.loads((tmp_path / "out" / "01_lesson.ipynb").read_text())
    assert any(output.get("ename") == "IndexError"
               for cell in executed["cells"] for output in cell.get("outputs", []))


@pytest.mark.notebook
@pytest.mark.parametrize("cells, index", [(["x = 1", "values = [1, 2]\nvalues[5]"], 2),
                                          (["values = [1, 2]\nvalues[5]"], 1)])  # right after the parameters
def test_the_failing_cell_is_numbered_as_in_the_lesson_when_parameters_are_injected(tmp_path, capsys, cells, index):
    path = make_notebook(tmp_path / "01_lesson.ipynb", *cells)
    assert lessons.main(["run", str(path), "-p", "SEED", "1", "--out", str(tmp_path / "out"), "--no-html"]) == 1
    assert f"cell {index} (`values = [1, 2]`) raised IndexError" in capsys.readouterr().err


@pytest.mark.notebook
def test_a_long_error_is_reported_in_the_one_line_that_says_why(tmp_path, capsys):
    """TensorFlow's errors put a stack trace and a graph node's name around their reason."""
    path = make_notebook(tmp_path / "01_lesson.ipynb", "raise ValueError('Graph execution error:\\n\\n  File \"x.py\", "
                         "line 1\\nReceived a label value of 2\\n\\t [[{{node loss}}]] [Op:step]')")
    assert lessons.main(["run", str(path), "--out", str(tmp_path / "out"), "--no-html"]) == 1
    error = capsys.readouterr().err
    assert error.split("raised ValueError: ")[1].startswith("Received a label value of 2\n  see ")


@pytest.mark.notebook
def test_a_kernel_that_dies_is_reported_in_one_line_and_the_next_lesson_still_runs(tmp_path, capsys):
    """Linux's out-of-memory killer ends a kernel with SIGKILL: no Python error, no traceback."""
    dies = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                         "print('never')")
    fine = make_notebook(tmp_path / "02_lesson.ipynb", "print('fine')")
    assert lessons.main(["run", str(dies), str(fine), "--out", str(tmp_path / "out"), "--no-html"]) == 1
    captured = capsys.readouterr()
    assert ("FAILED: cell 2 (`import os, signal`) stopped: the kernel died, with no Python error; on Linux that is "
            "most often the system killing it when memory ran out") in captured.err and "Traceback" not in captured.err
    assert re.search(r"01_lesson\s+failed", captured.out) and re.search(r"02_lesson\s+ok", captured.out)
    executed = nbformat.read(tmp_path / "out" / "01_lesson.ipynb", as_version=4).cells  # written, up to the kill
    assert [cell.source for cell in executed][1:] == ["x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                                                      "print('never')"]
    assert executed[1].execution_count == 2 and executed[3].execution_count is None and not executed[3].outputs


def test_clean_on_a_missing_file_says_so_in_one_line(tmp_path, capsys):
    assert lessons.main(["clean", str(tmp_path / "missing.ipynb")]) == 2
    error = capsys.readouterr().err
    assert "missing.ipynb does not exist" in error and "Traceback" not in error


def test_clean_strips_outputs_counts_and_stray_metadata(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "print(1)")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    notebook.cells[1].execution_count = 4
    notebook.cells[1].metadata["collapsed"] = True
    notebook.metadata["widgets"] = {"state": {}}
    nbformat.write(notebook, path)

    assert copies.clean(path) is True
    cleaned = nbformat.read(path, as_version=4)
    assert cleaned.cells[1].outputs == [] and cleaned.cells[1].execution_count is None
    assert cleaned.cells[1].metadata == {} and cleaned.cells[0].metadata == {"tags": ["parameters"]}
    assert set(cleaned.metadata) == {"kernelspec", "course"}
    assert copies.clean(path) is False  # a second run changes nothing


def test_clean_without_paths_cleans_the_lessons_and_leaves_copies_of_them_as_they_are(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path)
    lesson, copy, duplicate = (make_notebook(tmp_path / name, "print(1)") for name in (
        "01_lesson.ipynb", "01_lesson.from-gpubox.ipynb", "01_lesson-Copy1.ipynb"))
    for path in (lesson, copy, duplicate):
        notebook = nbformat.read(path, as_version=4)
        notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
        nbformat.write(notebook, path)
    assert lessons.all_lessons() == [lesson]
    assert lessons.main(["clean"]) == 0
    assert nbformat.read(lesson, as_version=4).cells[1].outputs == []
    assert nbformat.read(copy, as_version=4).cells[1].outputs != []  # the learner's, with their outputs
    assert nbformat.read(duplicate, as_version=4).cells[1].outputs != []  # JupyterLab's Duplicate, the learner's too
    assert "cleaned: " in capsys.readouterr().out


def test_runner_refuses_to_write_executed_copies_over_the_lessons(tmp_path, capsys, monkeypatch):
    # on a copy of the lessons folder: were the refusal broken, the real lessons would stay as they are
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.chdir(tmp_path)
    paths.NOTEBOOKS.mkdir()
    lesson = paths.NOTEBOOKS / "01_convolution_filters.ipynb"
    shutil.copy(paths.ROOT / "notebooks" / lesson.name, lesson)
    before = lesson.read_bytes()
    for out in (paths.NOTEBOOKS, paths.NOTEBOOKS / "executed", "notebooks"):
        assert lessons.main(["run", str(lesson), "--out", str(out)]) == 2
        assert "would overwrite the lesson notebooks" in capsys.readouterr().err
    with pytest.raises(lessons.LessonError, match="would overwrite"):
        lessons.run(lesson, out_dir=paths.NOTEBOOKS)
    mine = make_notebook(tmp_path / "01_mine.ipynb", "x = 1")  # any lesson's own folder, not only notebooks/
    mine_before = mine.read_bytes()
    assert lessons.main(["run", str(mine), "--out", str(tmp_path)]) == 2
    assert "would overwrite the lesson notebooks" in capsys.readouterr().err
    with pytest.raises(lessons.LessonError, match="would overwrite"):
        lessons.check_out_dir(tmp_path, [mine])
    assert lesson.read_bytes() == before and not (paths.NOTEBOOKS / "executed").exists()
    assert mine.read_bytes() == mine_before and not (tmp_path / "01_mine.html").exists()


def test_clean_on_a_symbolic_link_cleans_the_notebook_it_points_to_and_keeps_the_link(tmp_path, capsys):
    target = make_notebook(tmp_path / "01_lesson.ipynb", "print(1)")
    notebook = nbformat.read(target, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(notebook, target)
    link = tmp_path / "linked" / "01_lesson.ipynb"
    link.parent.mkdir()
    link.symlink_to(target)
    assert lessons.main(["clean", str(link)]) == 0
    assert f"cleaned: {link}" in capsys.readouterr().out
    assert link.is_symlink() and link.resolve() == target
    assert nbformat.read(target, as_version=4).cells[1].outputs == []


def test_clean_on_a_read_only_notebook_leaves_it_and_says_so_in_one_line(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "print(1)")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(notebook, path)
    path.chmod(0o444)
    before = path.read_bytes()
    result = subprocess.run([sys.executable, "-m", "utils.lessons", "clean", str(path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(paths.ROOT)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "is read-only" in result.stderr and "chmod u+w" in result.stderr
    assert path.read_bytes() == before and oct(path.stat().st_mode & 0o777) == oct(0o444)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_lesson.ipynb"]  # no .part left behind


def test_a_folder_named_like_a_notebook_is_refused_in_one_line(tmp_path, capsys):
    folder = tmp_path / "03_cnn_from_scratch.ipynb"
    folder.mkdir()
    for command in (["run", str(folder), "--out", str(tmp_path / "out")], ["clean", str(folder)]):
        assert lessons.main(command) == 2
        error = capsys.readouterr().err
        assert f"{folder} is not a notebook file: give the path of a lesson's .ipynb file" in error
        assert error.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, wanted", [
    (["run", ""], "the path is empty: give the path of a lesson's .ipynb file"),
    (["clean", " "], "the path is empty: give the path of a lesson's .ipynb file"),
    (["run", "LESSON", "--out", ""], "the path is empty: give a folder"),
])
def test_an_empty_notebook_path_or_out_is_refused_not_taken_for_the_current_folder(tmp_path, capsys, monkeypatch,
                                                                                   command, wanted):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "here").mkdir()
    lesson = make_notebook(tmp_path / "notebooks" / "01_lesson.ipynb")
    monkeypatch.chdir(tmp_path / "here")  # "" would be this folder: the executed copies would land here
    with pytest.raises(SystemExit) as exited:
        lessons.main([str(lesson) if arg == "LESSON" else arg for arg in command])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in error
    assert error.splitlines()[-1].endswith(f": {wanted}"), error
    assert not any((tmp_path / "here").iterdir())


@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_parameter_written_name_equals_value_is_refused_at_once(tmp_path, capsys, where):
    path = make_notebook(tmp_path / "03_lesson.ipynb")
    out = ["--out", str(tmp_path / "out")]
    argv = (["run", "-p", "EPOCHS=3", str(path), *out] if where == "middle"
            else ["run", str(path), *out, "-p", "EPOCHS=3"])
    assert lessons.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: -p takes a name and a value: write -p EPOCHS 3, not -p EPOCHS=3.\n"
    assert "01_" not in captured.err and "===" not in captured.out
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_before_anything_runs(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1")
    file = tmp_path / "results.txt"
    file.write_text("mine")
    for out, expected in ((file, f"--out {file}: {file} is a file; give a folder for the executed copies"),
                          (file / "sub", f"--out {file / 'sub'}: {file} is a file; "
                                         "give a folder for the executed copies")):
        assert lessons.main(["run", str(path), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.err == f"error: {expected}.\n" and "===" not in captured.out
    with pytest.raises(lessons.LessonError, match="is a file"):
        lessons.run(path, out_dir=file)
    assert file.read_text() == "mine"


def learners_files(out, name="01_lesson"):
    out.mkdir(exist_ok=True)
    make_notebook(out / f"{name}.ipynb", "print('my own work')")
    (out / f"{name}.html").write_text("<html><body>my own page</body></html>")
    return {path.name: path.read_bytes() for path in out.iterdir()}


def test_the_runner_refuses_to_replace_files_it_did_not_write(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1", smoke={"EPOCHS": 1})
    out = tmp_path / "out"
    before = learners_files(out)
    assert lessons.main(["run", "--smoke", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "===" not in captured.out
    assert f"{out / '01_lesson.ipynb'} is not an executed copy" in captured.err
    assert f"run the lesson into another folder DIR: `.venv/bin/python -m utils.lessons run --out DIR {path}`." \
        in captured.err
    (out / "01_lesson.ipynb").unlink()  # the page alone is refused too
    del before["01_lesson.ipynb"]
    assert lessons.main(["run", str(path), "--out", str(out)]) == 2
    assert f"{out / '01_lesson.html'} is not an executed copy" in capsys.readouterr().err
    with pytest.raises(copies.NotReplaceable, match="is not an executed copy"):
        lessons.run(path, out_dir=out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing ran, nothing was written


def test_a_copy_moved_elsewhere_or_a_folder_in_its_place_is_not_replaced(tmp_path):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1")
    notebook = nbformat.read(path, as_version=4)
    written = tmp_path / "build" / "01_lesson.ipynb"
    notebook.metadata["course_kit"] = {"executed_copy": True, "written_to": str(written)}
    (tmp_path / "mine").mkdir()
    nbformat.write(notebook, tmp_path / "mine" / "01_lesson.ipynb")  # the learner kept a copy to work on
    with pytest.raises(copies.NotReplaceable, match="is not an executed copy"):
        lessons.check_out_dir(tmp_path / "mine", [path])
    (tmp_path / "folder" / "01_lesson.ipynb").mkdir(parents=True)
    with pytest.raises(copies.NotReplaceable, match="is not an executed copy"):
        lessons.check_out_dir(tmp_path / "folder", [path])


def test_copies_an_earlier_runner_left_are_still_its_own(tmp_path, monkeypatch):
    """build/lessons from before the markers, or a run stopped half-way: papermill's record says whose they are."""
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)  # where `make lessons` ran: it gave papermill a relative path
    for output_path in (str(out / "01_lesson.ipynb"), "out/01_lesson.ipynb"):
        copy = make_notebook(out / "01_lesson.ipynb", "x = 1")
        notebook = nbformat.read(copy, as_version=4)
        notebook.metadata["papermill"] = {"input_path": str(path), "output_path": output_path}
        nbformat.write(notebook, copy)
        (out / "01_lesson.html").write_text("<html>an old rendering</html>")
        lessons.check_out_dir(out, [path])  # no error
    notebook.metadata["papermill"]["output_path"] = str(tmp_path / "elsewhere" / "01_lesson.ipynb")
    nbformat.write(notebook, copy)
    with pytest.raises(copies.NotReplaceable, match="01_lesson.ipynb is not an executed copy"):
        lessons.check_out_dir(out, [path])


@pytest.mark.notebook
def test_the_runners_own_copies_are_replaced_on_the_next_run(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb",
                         "from utils import lessons\nlessons.headline(f'{EPOCHS} epochs')")
    out = tmp_path / "out"
    assert lessons.main(["run", str(path), "--out", str(out)]) == 0
    executed = nbformat.read(out / "01_lesson.ipynb", as_version=4)
    assert executed.metadata["course_kit"]["executed_copy"] is True
    assert "3 epochs" in (out / "01_lesson.html").read_text()
    assert lessons.main(["run", str(path), "--out", str(out), "-p", "EPOCHS", "5"]) == 0
    assert "5 epochs" in (out / "01_lesson.html").read_text()
    assert "5 epochs" in (out / "01_lesson.ipynb").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["01_lesson.html", "01_lesson.ipynb"]
    capsys.readouterr()
    (out / "01_lesson.html").write_text("<html>the learner's own page</html>")
    assert lessons.main(["run", str(path), "--out", str(out)]) == 2
    assert "01_lesson.html is not an executed copy" in capsys.readouterr().err
    assert (out / "01_lesson.html").read_text() == "<html>the learner's own page</html>"
    capsys.readouterr()
    assert lessons.main(["run", str(path), "--out", str(out), "-p", "EPOCHS", "7", "--no-html"]) == 0
    assert "7 epochs" in (out / "01_lesson.ipynb").read_text()
    assert (out / "01_lesson.html").read_text() == "<html>the learner's own page</html>"
    assert f"note: {out / '01_lesson.html'} was left as it was (--no-html writes no page)" in capsys.readouterr().out


@pytest.mark.notebook
def test_an_executed_copy_the_learner_edited_or_made_read_only_is_not_replaced(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "x = 1")
    out = tmp_path / "out"
    assert lessons.main(["run", str(path), "--out", str(out), "--no-html"]) == 0
    copy = out / "01_lesson.ipynb"
    reopened = nbformat.read(copy, as_version=4)
    nbformat.write(reopened, copy)  # saved again unchanged (as Jupyter does): still the runner's to replace
    assert lessons.main(["run", str(path), "--out", str(out), "--no-html"]) == 0
    edited = nbformat.read(copy, as_version=4)
    edited.cells.append(nbformat.v4.new_markdown_cell("my notes on this run"))
    nbformat.write(edited, copy)
    capsys.readouterr()
    assert lessons.main(["run", str(path), "--out", str(out), "--no-html"]) == 2
    assert "was changed after the lesson runner wrote it" in capsys.readouterr().err
    assert "my notes on this run" in copy.read_text()
    copy.unlink()
    assert lessons.main(["run", str(path), "--out", str(out), "--no-html"]) == 0
    copy.chmod(0o444)
    before = copy.read_bytes()
    capsys.readouterr()
    assert lessons.main(["run", str(path), "--out", str(out), "--no-html"]) == 2
    assert "is read-only, and running 01_lesson.ipynb would replace it" in capsys.readouterr().err
    assert copy.read_bytes() == before


def test_a_refusal_names_a_command_the_learner_can_run_also_under_make(tmp_path, monkeypatch, capsys):
    """`make lessons` has no --out option: the refusal gives the runner's own command, with the lesson's path as
    typed from where the command ran (make runs it from the kit's folder: notebooks/NN_name.ipynb)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").mkdir()
    path = make_notebook(tmp_path / "notebooks" / "01_lesson.ipynb", "x = 1")
    out = tmp_path / "build"
    learners_files(out)
    for lesson in (path, "notebooks/01_lesson.ipynb"):  # `make lessons` passes none: every lesson, by full path
        assert lessons.main(["run", str(lesson), "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert error.endswith("; move that file away, or run the lesson into another folder DIR: "
                              "`.venv/bin/python -m utils.lessons run --out DIR notebooks/01_lesson.ipynb`.\n"), error
        assert "--out folder" not in error


def run_in_background(tmp_path, *argv, patience=None):
    """`python -m utils.lessons ARGV` in a process group of its own, as a terminal runs a command (taking Ctrl-C
    even where the tests run with it ignored, in the background)."""
    code = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); from utils import lessons\n"
    if patience is not None:
        code += f"from utils import interrupts; interrupts.PATIENCE = {patience}\n"
    code += "sys.exit(lessons.main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(paths.ROOT)})


def press_ctrl_c_when(process, marker, times=1):
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group), once `marker` exists."""
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    for _ in range(times):
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.5)
    return process.communicate(timeout=120)


def assert_interrupted_in_one_line(process, stderr):
    assert process.returncode == 130, stderr
    assert [line for line in stderr.splitlines() if line.startswith("interrupted:")] == [
        f"interrupted: {lessons.INTERRUPTED}."], stderr
    for noise in ("Traceback", "Error", "Kernel died", "Task exception", "Task was destroyed"):
        assert noise not in stderr, stderr


SLEEPS = "import pathlib, time\npathlib.Path(MARKER).touch()\ntime.sleep(SECONDS)\nprint('slept')"


@pytest.mark.notebook
def test_ctrl_c_ends_a_run_in_one_line_and_keeps_the_last_finished_copy_and_page(tmp_path):
    marker = tmp_path / "sleeping"
    path = make_notebook(tmp_path / "01_lesson.ipynb", "print('first cell')", SLEEPS,
                         parameters=f"MARKER = {str(marker)!r}\nSECONDS = 0\n")
    out = tmp_path / "out"
    assert lessons.main(["run", str(path), "--out", str(out)]) == 0
    finished = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(finished) == ["01_lesson.html", "01_lesson.ipynb"]
    marker.unlink()

    process = run_in_background(tmp_path, "run", str(path), "--out", str(out), "-p", "SECONDS", "60")
    started = time.monotonic()
    _, stderr = press_ctrl_c_when(process, marker)
    assert_interrupted_in_one_line(process, stderr)
    assert time.monotonic() - started < 30  # the cell was stopped, not waited for
    assert {p.name: p.read_bytes() for p in out.iterdir()} == finished  # nothing half-written left either


@pytest.mark.notebook
def test_ctrl_c_stops_a_cell_that_will_not_stop_and_again_at_once(tmp_path):
    marker = tmp_path / "sleeping"
    stubborn = ("import pathlib, time\npathlib.Path(MARKER).touch()\nfor _ in range(3):\n    try:\n"
                "        time.sleep(60)\n    except KeyboardInterrupt:\n        print('not stopping')")
    path = make_notebook(tmp_path / "01_lesson.ipynb", stubborn, parameters=f"MARKER = {str(marker)!r}\n")
    out = tmp_path / "out"
    for presses, patience in ((1, 1), (2, 60)):  # the kernel gets PATIENCE seconds; a second Ctrl-C ends it now
        marker.unlink(missing_ok=True)
        process = run_in_background(tmp_path, "run", str(path), "--out", str(out), patience=patience)
        started = time.monotonic()
        _, stderr = press_ctrl_c_when(process, marker, times=presses)
        assert_interrupted_in_one_line(process, stderr)
        assert time.monotonic() - started < 30
        assert not out.exists() or not any(out.iterdir())


@pytest.mark.notebook
def test_a_failed_run_replaces_the_copy_and_its_page_together(tmp_path, capsys):
    path = make_notebook(tmp_path / "01_lesson.ipynb", "assert SEED == 0, 'seed ' + str(SEED)")
    out = tmp_path / "out"
    assert lessons.main(["run", str(path), "--out", str(out)]) == 0
    assert lessons.main(["run", str(path), "--out", str(out), "-p", "SEED", "7"]) == 1
    assert "raised AssertionError: seed 7" in capsys.readouterr().err
    assert "seed 7" in (out / "01_lesson.ipynb").read_text() and "seed 7" in (out / "01_lesson.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["01_lesson.html", "01_lesson.ipynb"]
    assert copies.is_executed_copy(out / "01_lesson.ipynb") and copies.is_executed_copy(out / "01_lesson.html")


def test_ctrl_c_while_the_copies_are_written_takes_effect_once_both_are(tmp_path):
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also in the background
    try:
        written = []
        with pytest.raises(KeyboardInterrupt):
            with interrupts.held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # the signal arrives; the block goes on
                written.append("both files")
        assert written == ["both files"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
