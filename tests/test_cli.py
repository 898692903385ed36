"""Every command line ends with one line and a non-zero status, never a traceback (utils.cli)."""

import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from utils import cli, paths


def test_known_errors_interruptions_and_bugs_each_end_in_one_line(capsys):
    def fails(error):
        def main(argv):
            raise error
        return main

    assert cli.run(fails(ValueError("no photos in x: download them first")), []) == 2
    assert capsys.readouterr().err == "error: no photos in x: download them first\n"
    assert cli.run(fails(KeyboardInterrupt()), [], interrupted="run it again") == cli.INTERRUPTED
    assert capsys.readouterr().err.strip() == "interrupted: run it again."
    assert cli.run(fails(ZeroDivisionError("division by zero")), []) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unexpected ZeroDivisionError" in error and "--debug" in error
    with pytest.raises(ZeroDivisionError):
        cli.run(fails(ZeroDivisionError("division by zero")), ["--debug"])


def test_the_arguments_reach_main_without_debug():
    seen = []
    assert cli.run(lambda argv: seen.append(argv) or 0, ["a", "--debug", "b"]) == 0
    assert seen == [["a", "b"]]


@pytest.mark.parametrize("command", [
    ["utils.data", "organize", "no-such-folder"],
    ["utils.data", "check", "no-such-folder"],
    ["utils.predict", "no-such-model.keras", "cat.jpg"],
    ["utils.lessons", "clean", "no-such.ipynb"],
    ["utils.lessons", "run", "notebooks/01_convolution_filters.ipynb", "-p", "SAMPLE", "maybe"],
])
def test_bad_input_on_each_command_line_is_one_line_and_a_non_zero_exit(command, tmp_path):
    result = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(paths.ROOT),
                                              "COURSE_DATA_DIR": str(tmp_path / "data"),
                                              "COURSE_MODELS_DIR": str(tmp_path / "models")})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))


@pytest.mark.parametrize("data", ["no-such-folder", "empty"])
def test_the_real_photos_benchmark_refuses_a_wrong_folder_in_one_line_and_leaves_no_temporary_folder(data, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "tmp").mkdir()
    result = subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / "real_pets.py"), "--data", data],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(paths.ROOT), "TMPDIR": str(tmp_path / "tmp")})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [result.stderr.strip()]
    assert result.stderr.startswith("error: ") and data in result.stderr
    assert not any((tmp_path / "tmp").iterdir())


def test_a_relative_path_on_the_command_line_is_taken_from_the_current_folder(tmp_path):
    (tmp_path / "mine" / "cats").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "utils.data", "check", "mine"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(paths.ROOT)})
    assert result.returncode == 2, result.stderr
    assert f"error: no images in {tmp_path / 'mine'} or its subfolders" in result.stderr


def test_an_error_straight_from_the_operating_system_gets_its_path_and_a_next_step(tmp_path, capsys):
    def main(argv):
        (tmp_path / "a-file").write_text("")
        (tmp_path / "a-file" / "x").mkdir()  # a folder inside a file

    assert cli.run(main, []) == 2
    assert capsys.readouterr().err == (f"error: Not a directory: {tmp_path / 'a-file' / 'x'}; a file stands where "
                                       "a folder is needed: choose another path.\n")
    assert cli.message(PermissionError(13, "Permission denied", "/x")) == (
        "Permission denied: /x; check its permissions (ls -l), or use another path.")
    assert cli.message(ValueError("the kit's own words")) == "the kit's own words"


@pytest.mark.parametrize("command", [
    ["utils.data", "organize", ""],
    ["utils.data", "check", " "],
    ["utils.data", "download", "mnist", "--data-dir", ""],
])
def test_an_empty_path_is_refused_not_taken_for_the_kits_folder(command, tmp_path):
    result = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(paths.ROOT),
                                              "COURSE_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is empty: give a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def learner_make(*args, cwd):
    """`make ARGS` as a learner runs it, not as a sub-make of `make test` (which adds "Entering directory" lines)."""
    env = {name: value for name, value in os.environ.items() if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def test_make_refuses_another_python_in_one_line_before_creating_anything(tmp_path):
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(paths.ROOT / name, tmp_path)
    other_python = tmp_path / "python3.13"  # answers --version like Python 3.13, and fails the kit's version check
    other_python.write_text('#!/bin/sh\n[ "$1" = "--version" ] && echo "Python 3.13.1" && exit 0\nexit 1\n')
    other_python.chmod(0o755)
    finished = learner_make("lessons", f"PYTHON={other_python}", cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.stderr.splitlines()[0] == (
        f"error: the kit needs Python 3.11, and '{other_python}' is Python 3.13.1. Install Python 3.11, then run: "
        "make lessons PYTHON=python3.11")
    assert not (tmp_path / ".venv").exists()
    assert "python3.13 -m venv" not in finished.stdout


def run_check_machine(monkeypatch, capsys, system, machine, bits=64, macos="14.5", release="6.1.0-28-amd64",
                      folder="/home/ada/course"):
    """setup/check_machine.py's main, as a `bits`-bit Python runs it on `system` / `machine` (`macos` on a Mac),
    under the kernel `release`, in `folder`, whatever machine runs the test: (status, stderr)."""
    spec = importlib.util.spec_from_file_location("check_machine", paths.ROOT / "setup" / "check_machine.py")
    check_machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_machine)
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(check_machine.struct, "calcsize", lambda code: {"P": bits // 8}[code])
    monkeypatch.setattr(platform, "mac_ver", lambda: (macos if system == "Darwin" else "", ("", "", ""), ""))
    monkeypatch.setattr(platform, "release", lambda: release)
    monkeypatch.setattr(os, "getcwd", lambda: folder)
    return check_machine.main(), capsys.readouterr().err


@pytest.mark.parametrize("system, machine", [("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64")])
def test_the_machines_tensorflow_publishes_for_pass_the_check(monkeypatch, capsys, system, machine):
    assert run_check_machine(monkeypatch, capsys, system, machine) == (0, "")


@pytest.mark.parametrize("system, machine, bits, advice", [
    ("Darwin", "arm64", 64, "TensorFlow's builds for Apple silicon need macOS 12 or later, and this Mac has 11.7.10: "
                            "update macOS."),
    ("Linux", "aarch64", 32, "TensorFlow needs a 64-bit Python, and this one is a 32-bit program (on a Raspberry Pi "
                             "3, 4 or 5: install the 64-bit Raspberry Pi OS)"),
    ("Darwin", "x86_64", 64, "install an arm64 Python 3.11 (python.org's macOS installer) instead of an Intel one "
                             "running under Rosetta. The last TensorFlow for Intel Macs was 2.16.2: on an Intel Mac, "
                             "use a Linux machine"),
    ("Windows", "AMD64", 64, "run the kit inside WSL: `wsl --install` once in PowerShell"),
    ("MINGW64_NT-10.0-22631", "x86_64", 64, "run the kit inside WSL"),
    ("Linux", "armv7l", 32, "use a Linux machine on x86-64 or ARM64 (aarch64) (on a Raspberry Pi 3, 4 or 5: install "
                            "the 64-bit Raspberry Pi OS), or follow the course on a rented cloud GPU box "
                            "(setup/README.md)."),
    ("FreeBSD", "amd64", 64, "use a Linux machine on x86-64 or ARM64"),
])
def test_other_machines_are_told_in_one_line_what_to_do_instead(monkeypatch, capsys, system, machine, bits, advice):
    status, stderr = run_check_machine(monkeypatch, capsys, system, machine, bits, macos="11.7.10")
    assert status == 1 and len(stderr.splitlines()) == 1
    assert stderr.startswith(f"error: TensorFlow 2.21, which the kit runs on, has no build for this machine "
                             f"({system} on {machine}, {bits}-bit, as {sys.executable} sees it): ")
    assert advice in stderr


@pytest.mark.parametrize("release, folder, noted", [
    ("6.6.87.2-microsoft-standard-WSL2", "/mnt/c/Users/ada/course", True),
    ("6.6.87.2-microsoft-standard-WSL2", "/mnt/D/course", True),
    ("6.6.87.2-microsoft-standard-WSL2", "/home/ada/course", False),
    ("6.1.0-28-amd64", "/mnt/c/course", False),  # not WSL: a Linux disk mounted on /mnt/c is no slower
])
def test_wsl_with_the_kit_on_a_windows_drive_gets_a_note_and_goes_on(monkeypatch, capsys, release, folder, noted):
    status, stderr = run_check_machine(monkeypatch, capsys, "Linux", "x86_64", release=release, folder=folder)
    assert status == 0
    assert stderr == ("" if not noted else
                      f"note: the kit is on a Windows drive ({folder}), which WSL reads and writes through a slow "
                      "bridge: installing and the lessons take longer there. Microsoft advises keeping projects in "
                      "WSL's own file system: `cd ~`, clone the kit again there and run make in it (or carry on "
                      "here).\n")


def test_make_refuses_a_machine_without_tensorflow_in_one_line_before_creating_anything(tmp_path):
    for name in ("Makefile", "requirements.txt", "pyproject.toml", "setup/check_machine.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(paths.ROOT / name, tmp_path / name)
    intel_mac = tmp_path / "intel-mac"  # the kit's Python 3.11, told by a sitecustomize that it runs on an Intel Mac
    intel_mac.mkdir()
    (intel_mac / "sitecustomize.py").write_text(
        'import platform\nplatform.system = lambda: "Darwin"\nplatform.machine = lambda: "x86_64"\n')
    python = tmp_path / "python3.11"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={intel_mac} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    finished = learner_make("lessons", f"PYTHON={python}", cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.stderr.splitlines()[0].startswith(
        "error: TensorFlow 2.21, which the kit runs on, has no build for this machine (Darwin on x86_64, 64-bit, as ")
    assert "Rosetta" in finished.stderr.splitlines()[0]
    assert not (tmp_path / ".venv").exists()
    assert "-m venv" not in finished.stdout


def fake_python(tmp_path, script):
    """A python3.11 in `tmp_path` that runs the kit's own Python, after the shell lines `script`."""
    python = tmp_path / "python3.11"
    python.write_text(f'#!/bin/sh\n{script}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    for name in ("Makefile", "requirements.txt", "pyproject.toml", "setup/check_machine.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(paths.ROOT / name, tmp_path / name)
    return python


def test_make_refuses_a_python_without_its_venv_module_in_one_line_before_creating_anything(tmp_path):
    """Debian and Ubuntu's python3.11 comes without ensurepip (python3.11-venv): say what to install."""
    blocked = tmp_path / "no-ensurepip"
    blocked.mkdir()
    (blocked / "sitecustomize.py").write_text("import sys\nsys.modules['ensurepip'] = None\n")
    python = fake_python(tmp_path, f"export PYTHONPATH={blocked}")
    finished = learner_make("lessons", f"PYTHON={python}", cwd=tmp_path)
    assert finished.returncode != 0 and not (tmp_path / ".venv").exists()
    assert finished.stderr.splitlines()[:-1] == [  # then make's own "*** ... Error 1"
        f"error: '{python}' has no venv module to create .venv with (Debian and Ubuntu ship it apart). Install it: "
        f"sudo apt install python3.11-venv, then run: make lessons PYTHON={python}"]


def test_a_venv_that_fails_half_made_is_removed_so_the_next_make_tries_again(tmp_path):
    """`python3 -m venv` can fail after making .venv/bin/python; make would then take .venv for made, and fail later
    with no word of why."""
    python = fake_python(tmp_path, 'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && '
                                   'touch "$3/bin/python" && echo "venv failed: disk full" >&2 && exit 1; fi')
    for _ in range(2):
        finished = learner_make("lessons", f"PYTHON={python}", cwd=tmp_path)
        assert finished.returncode != 0 and not (tmp_path / ".venv").exists()
        assert finished.stderr.splitlines()[-3:-1] == [  # then make's own "*** ... Error 1"
            "venv failed: disk full",
            f"error: '{python} -m venv .venv' failed, for the reason above; nothing was kept. Fix it, then run: make "
            f"lessons PYTHON={python}"]


def test_make_slides_without_npm_says_how_to_install_it_in_one_line(tmp_path):
    """On a Mac, or as a learner who is not root, there is no apt-get to fetch npm with: say what to install."""
    shutil.copy(paths.ROOT / "Makefile", tmp_path)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()  # the venv exists; only npm is missing
    tools = tmp_path / "tools"  # a PATH with `id` but neither npm nor apt-get
    tools.mkdir()
    (tools / "id").symlink_to(shutil.which("id"))
    env = {name: value for name, value in os.environ.items() if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    finished = subprocess.run([shutil.which("make"), ".venv/share/course-web/.installed"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env={**env, "PATH": str(tools)})
    assert finished.returncode != 0
    assert finished.stderr.splitlines()[0] == (
        "make: slides and the site need npm (Node.js) once, to fetch reveal.js and MathJax from the npm registry: "
        "install Node.js (Debian or Ubuntu: sudo apt install npm; macOS: brew install node; or nodejs.org), then run "
        "the same command again.")
    assert sorted(path.name for path in (tmp_path / ".venv").iterdir()) == ["bin"]


def test_make_accepts_python_3_11(tmp_path):
    shutil.copy(paths.ROOT / "Makefile", tmp_path)
    finished = learner_make("-n", ".venv/bin/python", f"PYTHON={sys.executable}", cwd=tmp_path)
    assert finished.returncode == 0 and "-m venv .venv" in finished.stdout
    check = next(line for line in finished.stdout.splitlines() if "sys.version_info" in line)
    checked = subprocess.run(["sh", "-c", check.split(" || ")[0]], timeout=60)
    assert checked.returncode == 0  # this test runs on the kit's Python 3.11: its version check passes


def test_make_lab_serves_jupyterlab_on_localhost_with_a_token_as_root_too(tmp_path):
    """The README's `make lab` starts JupyterLab, as a learner or as root (a container), where Jupyter refuses
    to start unless given --allow-root."""
    if not (paths.ROOT / ".venv" / ".course-installed").exists():
        pytest.skip("make lab needs the kit's .venv (make test builds it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: value for name, value in os.environ.items() if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env.update(JUPYTER_PORT=str(port), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), BROWSER="true")
    lab = subprocess.Popen(["make", "lab", f"LAB_DIR={tmp_path}"], cwd=paths.ROOT, env=env, text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = threading.Timer(120, os.killpg, (lab.pid, signal.SIGTERM))  # a hung start ends the read below
    deadline.start()
    try:
        pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)")
        found, log = None, []
        while found is None:
            line = lab.stderr.readline()
            assert line, "make lab ended before serving:\n" + "".join(log[-5:])
            log.append(line)
            found = pattern.search(line)
        status = f"http://127.0.0.1:{port}/api/status"
        for _ in range(60):  # Jupyter prints its address a moment before it listens there
            try:
                with urllib.request.urlopen(f"{status}?token={found.group(1)}", timeout=30) as answer:
                    assert answer.status == 200
                break
            except urllib.error.URLError as error:
                assert isinstance(error.reason, ConnectionRefusedError), error
                time.sleep(0.5)
        else:
            pytest.fail(f"make lab printed its address but nothing listened on port {port}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(status, timeout=30)
        assert refused.value.code == 403  # without the token
    finally:
        deadline.cancel()
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=60)


def test_a_python_without_the_kits_packages_gets_one_line_not_a_traceback():
    # `python -m utils.…` typed as the kit's messages write it, outside the kit's .venv: -S hides its packages
    result = subprocess.run([sys.executable, "-S", "-m", "utils.data", "download", "mnist"], cwd=paths.ROOT,
                            capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                 if k != "PYTHONPATH"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {sys.executable} does not have the kit's packages (numpy, tqdm")
    assert "run the command with .venv/bin/python" in line


def test_an_error_message_is_cut_to_the_line_that_says_why():
    import keras
    import numpy as np

    from utils import cli

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError) as wrapped:  # Keras: "Exception encountered when calling ...", the reason, arguments
        model(np.zeros((2, 5)))
    said = cli.reason(str(wrapped.value))
    assert "\x1b" not in said and "incompatible" in said and "Arguments received" not in said
    graph = ('Graph execution error:\n\nDetected at node x defined at (most recent call last):\n  File "a.py", line 1\n'
             "Received a label value of 2 which is outside the valid range of [0, 2).\n\t [[{{node loss}}]] [Op:step]")
    assert cli.reason(graph) == "Received a label value of 2 which is outside the valid range of [0, 2)."
    assert cli.reason("no photos found in x: look in y.") == "no photos found in x: look in y."
    assert cli.message(ValueError("first line\nsecond line")) == "first line"
