"""utils.paths (where things go) and utils.safely (writing all or nothing, one builder at a time)."""

import subprocess
import sys
import textwrap
import time

import pytest

from utils import paths, safely


def test_an_empty_path_is_refused_not_taken_for_the_kits_folder():
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="an empty path"):
            paths.resolve(empty)
    assert paths.resolve("data/x") == paths.DATA / "x"


def test_write_text_replaces_the_file_a_link_points_to_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.ipynb"
    real.write_text("old")
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    safely.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_write_text_keeps_the_files_permissions(tmp_path):
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    safely.write_text(private, '{"a": 1}')
    assert private.read_text() == '{"a": 1}' and private.stat().st_mode & 0o777 == 0o600


def test_write_text_leaves_a_read_only_file_alone(tmp_path):
    frozen = tmp_path / "frozen.ipynb"
    frozen.write_text("mine")
    frozen.chmod(0o444)
    with pytest.raises(PermissionError, match=r"is read-only: it was left as it is; make it writable \(chmod u\+w"):
        safely.write_text(frozen, "theirs")
    assert frozen.read_text() == "mine" and not list(tmp_path.glob(".*.part"))


def test_a_second_builder_waits_for_the_first_and_says_so(tmp_path):
    """Two processes lock the same folder: the second starts only after the first has ended."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(paths.ROOT)!r})
        from utils import safely
        with safely.locked({str(tmp_path / 'layout')!r}, "organizing photos"):
            with open({str(tmp_path / 'log')!r}, "a") as log:
                log.write(sys.argv[1] + " start\\n"); log.flush(); time.sleep(1.0)
                log.write(sys.argv[1] + " end\\n")
    """)
    first = subprocess.Popen([sys.executable, "-c", script, "first"])
    for _ in range(100):  # until the first holds the lock
        if (tmp_path / "log").exists():
            break
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", script, "second"], capture_output=True, text=True, timeout=60)
    first.wait(timeout=60)
    assert (tmp_path / "log").read_text().split("\n")[:4] == ["first start", "first end", "second start",
                                                               "second end"]
    assert "Waiting: another command is organizing photos in" in second.stdout


def test_writers_of_the_same_file_at_once_each_leave_a_whole_file(tmp_path):
    import threading

    target, errors = tmp_path / "cache.json", []

    def write(text):
        try:
            for _ in range(200):
                safely.write_text(target, text)
        except OSError as error:  # the race: another writer renamed a shared .part away
            errors.append(error)

    writers = [threading.Thread(target=write, args=(letter * 5000,)) for letter in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert not errors and target.read_text() in ("a" * 5000, "b" * 5000)
    assert not list(tmp_path.glob(".*.part"))


def test_the_package_docstring_lists_every_module_once_on_one_line():
    import re

    import utils

    listed = re.findall(r"^    (\w+):", utils.__doc__, re.MULTILINE)
    modules = {path.stem for path in (paths.ROOT / "utils").glob("*.py") if path.stem != "__init__"}
    modules |= {path.parent.name for path in (paths.ROOT / "utils").glob("*/__init__.py")}
    assert sorted(listed) == sorted(modules)
    entries = utils.__doc__.split("Modules:\n", 1)[1].strip().splitlines()
    assert len(entries) == len(modules)  # one line each, no continuation lines
