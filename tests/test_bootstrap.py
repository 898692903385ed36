"""setup/bootstrap.sh and setup/idle_stop.py: shell hygiene, the dry run, the idle rule."""

import configparser
import datetime
import http.server
import json
import os
import pathlib
import shutil
import stat
import subprocess
import threading
import time

import pytest

import kit_scripts  # tests/kit_scripts.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "setup" / "bootstrap.sh"
SKIP_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__", ".ipynb_checkpoints"}


idle_stop = kit_scripts.load("setup/idle_stop.py")


@pytest.fixture(autouse=True)
def shutdowns(tmp_path, monkeypatch):
    """No test here may power this machine off: `idle_stop` runs a stand-in that records its arguments."""
    record = tmp_path / "shutdown-calls"
    stand_in = tmp_path / "shutdown-stand-in"
    stand_in.write_text(f'#!/bin/sh\necho "$*" >> "{record}"\n')
    stand_in.chmod(0o755)
    monkeypatch.setattr(idle_stop, "SHUTDOWN", [str(stand_in), *idle_stop.SHUTDOWN[1:]])
    return record


@pytest.fixture(autouse=True)
def booted_a_day_ago(monkeypatch):
    """This machine's own uptime must not decide a test: a last-busy time from before the boot is ignored, so on a
    machine up for less than an hour "idle for 61 minutes" would read as 0 (as it did in CI once)."""
    monkeypatch.setattr(idle_stop, "boot_time", lambda: time.time() - 24 * 3600)


def shell_scripts():
    """Every shell script in the kit: *.sh, and files with a sh/bash shebang."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            path = pathlib.Path(folder) / name
            try:
                first = path.open("rb").readline()
            except OSError:
                continue
            if name.endswith(".sh") or (first.startswith(b"#!") and first.split(b"/")[-1].split()[-1] in (b"sh", b"bash")):
                found.append(path)
    return sorted(found)


def test_the_kits_shell_scripts_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in shell_scripts()}
    assert {"setup/bootstrap.sh", ".ci/run"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shell_script_parses_and_passes_shellcheck(script):
    assert b"\r\n" not in script.read_bytes(), f"{script} has CRLF line endings"
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: `make test` installs it (apt-get install shellcheck)"
    lint = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_bootstrap_is_strict():
    lines = BOOTSTRAP.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines[:25]


def dry_run(*args, cwd=None):
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    return subprocess.run(["bash", str(BOOTSTRAP), "--dry-run", "--user", user, *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path):
    kit = tmp_path / "kit"
    home = pathlib.Path.home()
    before = {p: p.exists() for p in (home / ".course", pathlib.Path("/etc/default/course-idle-stop"),
                                      pathlib.Path("/etc/systemd/system/course-jupyter.service"))}
    result = dry_run("--repo", "https://example.invalid/kit.git", "--dir", str(kit),
                     "--idle-minutes", "45")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    steps = [line for line in out.splitlines() if line.startswith("==> step")]
    assert [s.split(":", 1)[0] for s in steps] == [f"==> step {n}/8" for n in range(1, 9)]
    for words in ("NVIDIA driver", "Python 3.11", "course kit", "TensorFlow's CUDA extra",
                  "localhost only, token", "systemd service course-jupyter",
                  "idle auto-stop (45 idle minutes", "utils.doctor"):
        assert any(words in step for step in steps), words
    assert f"would run: git clone --quiet https://example.invalid/kit.git {kit}" in out
    assert "tensorflow[and-cuda]==2.21.0" in out
    assert "would write: /etc/systemd/system/course-idle-stop.timer" in out
    assert "would run: systemctl enable --now course-idle-stop.timer" in out
    assert out.rstrip().endswith("nothing was changed.")
    assert not kit.exists()
    assert {p: p.exists() for p in before} == before


def test_dry_run_in_the_kit_keeps_the_checkout():
    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert f"get the course kit into {ROOT}" in result.stdout
    assert "already there (left as it is)" in result.stdout


def test_dir_is_made_absolute_for_systemd(tmp_path):
    """--dir . or a quoted ~/kit: systemd's WorkingDirectory= and ExecStart= need absolute paths."""
    import pwd

    home = pwd.getpwuid(os.getuid()).pw_dir  # the course user's home, as bootstrap.sh finds it
    url = "https://example.invalid/kit.git"
    for typed, cwd, absolute in ((".", ROOT, str(ROOT)), ("kit", tmp_path, str(tmp_path / "kit")),
                                 ("./a/../kit/", tmp_path, str(tmp_path / "kit")),
                                 ("~/kit", tmp_path, f"{home}/kit"), ("~", tmp_path, home)):
        result = dry_run("--repo", url, "--dir", typed, cwd=cwd)
        assert result.returncode == 0, result.stderr
        assert f"Course kit in {absolute} for user" in result.stdout, typed
        assert f"would run: {absolute}/.venv/bin/python -m utils.doctor" in result.stdout, typed
    assert f"would run: git clone --quiet {url} {tmp_path / 'kit'}\n" in dry_run(
        "--repo", url, "--dir", "kit", cwd=tmp_path).stdout
    assert not (tmp_path / "kit").exists()


@pytest.mark.parametrize("args, message", [
    (["--idle-minutes", "soon"], "whole number of minutes"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--user", "no-such-learner-xyz"], "there is no user 'no-such-learner-xyz'"),
])
def test_bad_options_are_refused(args, message):
    result = subprocess.run(["bash", str(BOOTSTRAP), "--dry-run", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_gpubox_user_data_is_bootstrap_with_settings():
    gpubox = kit_scripts.load("setup/gpubox.py")
    script = gpubox.user_data("https://example.invalid/kit.git", 30)
    assert len(gpubox.packed_user_data(script)) < 16 * 1024  # EC2's user-data limit, for what launch sends
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert script.splitlines()[1:4] == ["export COURSE_REPO=https://example.invalid/kit.git",
                                        "export IDLE_MINUTES=30", "export COURSE_USER=ubuntu"]
    odd = "https://example.invalid/it's a \"kit\"; rm -rf ~.git"  # quotes and a command in the URL
    shell = subprocess.run(["bash", "-c", gpubox.user_data(odd, 30).split("\n", 4)[1] + '\nprintf %s "$COURSE_REPO"'],
                           capture_output=True, text=True)
    assert shell.stdout == odd
    with pytest.raises(gpubox.GpuboxError, match="holds a user name or token"):
        gpubox.course_repo("https://learner:ghp_secret@github.com/learner/kit.git")


def test_write_file_refuses_to_write_through_a_symbolic_link(tmp_path):
    target = tmp_path / "learners-file"
    target.write_text("mine")
    state = tmp_path / "state"
    state.mkdir()
    (state / "token").symlink_to(target)  # planted where bootstrap writes, say ~/.course/token
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    function = subprocess.run(["sed", "-n", "/^write_file()/,/^}/p", str(BOOTSTRAP)],
                              capture_output=True, text=True).stdout
    for path in (state / "token", linked_dir / "token"):
        result = subprocess.run(["bash", "-c", f"DRY_RUN=0\n{function}\nwrite_file '{path}' 600 {user} <<< secret"],
                                capture_output=True, text=True)
        assert result.returncode == 2 and "symbolic link" in result.stderr
    assert target.read_text() == "mine" and not (tmp_path / "elsewhere" / "token").exists()
    result = subprocess.run(["bash", "-c", f"DRY_RUN=0\n{function}\nwrite_file '{state / 'plain'}' 600 {user} <<< ok"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and (state / "plain").read_text() == "ok\n"


def bootstrap_function(name):
    return subprocess.run(["sed", "-n", f"/^{name}()/,/^}}/p", str(BOOTSTRAP)], capture_output=True, text=True).stdout


def test_write_file_makes_a_new_file_readable_by_no_one_else_before_its_mode_is_set(tmp_path):
    """The Jupyter token is written 600: it must not exist as 644, under the usual umask, until the chmod."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    token = tmp_path / "state" / "jupyter-token"
    token.parent.mkdir()
    # a chmod that first records the mode the file was created with
    script = (f'umask 022\nDRY_RUN=0\nchmod() {{ stat -c %a "$2" > "{tmp_path}/created"; command chmod "$@"; }}\n'
              f'{bootstrap_function("write_file")}\nwrite_file "{token}" 600 {user} <<< secret')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "created").read_text().strip() == "600"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and token.read_text() == "secret\n"


def test_the_folder_of_the_jupyter_token_is_private_and_never_a_link(tmp_path):
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    functions = bootstrap_function("run") + bootstrap_function("private_dir")
    new, earlier, link = tmp_path / "new" / ".course", tmp_path / "earlier", tmp_path / "link"
    earlier.mkdir(mode=0o755)  # what an earlier bootstrap.sh made
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o755)
    for folder in (new, earlier, link):
        result = subprocess.run(["bash", "-c", f'umask 022\nDRY_RUN=0 COURSE_USER={user}\n{functions}\n'
                                 f'private_dir "{folder}"'], capture_output=True, text=True)
        if folder == link:
            assert result.returncode == 2 and "symbolic link" in result.stderr
        else:
            assert result.returncode == 0, result.stderr
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "elsewhere").stat().st_mode) == 0o755
    assert "private_dir \"$STATE_DIR\"\nif [[ -s \"$TOKEN_FILE\" ]]" in BOOTSTRAP.read_text()  # before the token


def test_dry_run_installs_the_idle_auto_stop_right_after_the_kit_before_the_long_install():
    steps = [line.split(": ", 1)[1] for line in dry_run("--repo", "https://example.invalid/kit.git",
                                                        "--dir", "/tmp/no-such-kit").stdout.splitlines()
             if line.startswith("==> step")]
    kit = next(i for i, step in enumerate(steps) if step.startswith("get the course kit"))
    assert steps[kit + 1].startswith("install the idle auto-stop")
    assert any(step.startswith("create the course's virtual environment") for step in steps[kit + 2:])


def test_the_jupyter_config_bootstrap_writes_listens_on_localhost_with_the_token(tmp_path):
    from traitlets.config import Config

    step = subprocess.run(["sed", "-n", '/^write_file "$STATE_DIR\\/jupyter_config.py"/,/^EOF$/p', str(BOOTSTRAP)],
                          capture_output=True, text=True).stdout
    assert step.count("\n") > 3, "the step that writes jupyter_config.py was not found"
    (tmp_path / "jupyter-token").write_text("a-long-secret\n")
    written = tmp_path / "jupyter_config.py"
    rendered = subprocess.run(["bash", "-c", f'write_file() {{ cat > "{written}"; }}\n'
                               f'STATE_DIR="{tmp_path}" COURSE_DIR="{tmp_path}/kit" '
                               f'TOKEN_FILE="{tmp_path}/jupyter-token"\n{step}'], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    c = Config()
    exec(written.read_text(), {"c": c})  # as Jupyter loads a config file
    assert c.ServerApp.ip == "127.0.0.1"  # reached only through the SSH tunnel
    assert c.ServerApp.open_browser is False and c.ServerApp.root_dir == f"{tmp_path}/kit"
    assert c.IdentityProvider.token == "a-long-secret"


def test_a_run_again_restarts_jupyter_only_when_its_unit_or_settings_changed(tmp_path):
    """Restarting course-jupyter ends the learner's running kernels: a run again with nothing changed only makes sure
    it runs (`enable --now`)."""
    steps = subprocess.run(["sed", "-n", '/^step "configure JupyterLab/,/^step "check the setup/p', str(BOOTSTRAP)],
                           capture_output=True, text=True).stdout
    assert "course-jupyter" in steps and steps.count("\n") > 20, "steps 6 and 7 were not found"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    log = tmp_path / "calls"
    (tmp_path / "units").mkdir()

    def run_steps(course_dir, venv_changed=None):
        script = (f'set -euo pipefail\n{"" if venv_changed is None else f"VENV_CHANGED={venv_changed} "}'
                  f'DRY_RUN=0 COURSE_USER={user} UNITS="{tmp_path}/units" '
                  f'STATE_DIR="{tmp_path}/state" TOKEN_FILE="{tmp_path}/state/jupyter-token" '
                  f'COURSE_DIR="{course_dir}" VENV="{course_dir}/.venv"\n'
                  f'step() {{ echo "==> $*"; }}\nrun() {{ echo "$*" >> "{log}"; }}\n'
                  f'private_dir() {{ mkdir -p "$1"; }}\n{bootstrap_function("write_file")}\n{steps}')
        log.write_text("")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return [line for line in log.read_text().splitlines() if "course-jupyter" in line]

    first = run_steps(tmp_path / "kit")  # a new machine: the unit, settings and token are new
    assert first == ["systemctl enable course-jupyter.service", "systemctl restart course-jupyter.service"]
    again = run_steps(tmp_path / "kit")  # the same settings: its kernels are left running
    assert again == ["systemctl enable --now course-jupyter.service"]
    moved = run_steps(tmp_path / "kit-elsewhere")  # --dir changed: the unit and settings changed
    assert moved == ["systemctl enable course-jupyter.service", "systemctl restart course-jupyter.service"]
    (tmp_path / "state" / "jupyter-token").unlink()  # a new token must reach the server
    assert run_steps(tmp_path / "kit-elsewhere")[-1] == "systemctl restart course-jupyter.service"
    assert run_steps(tmp_path / "kit-elsewhere") == ["systemctl enable --now course-jupyter.service"]
    assert run_steps(tmp_path / "kit-elsewhere", venv_changed=0) == ["systemctl enable --now course-jupyter.service"]
    # a new TensorFlow or kit installed into the venv (requirements.txt changed): the server must run it
    assert run_steps(tmp_path / "kit-elsewhere", venv_changed=1)[-1] == "systemctl restart course-jupyter.service"


def stand_ins(folder, log, apt_update_failures=0, python_ready=True):
    """Commands bootstrap.sh may call, each recording its arguments in `log`: git fails as a wrong --repo does,
    systemctl finds no unit enabled from an earlier run, `apt-get update` fails `apt_update_failures` times (as
    while another apt holds the lists' lock), and python3.11 lacks venv unless `python_ready`."""
    folder.mkdir()
    count = folder / "apt-updates"
    count.write_text("0")
    extra = {"systemctl": '[ "$1" = is-enabled ] && exit 1\n',
             "apt-get": f'case "$*" in *update*) n=$(($(cat "{count}") + 1)); echo $n > "{count}"\n'
                        f'  [ $n -gt {apt_update_failures} ] || exit 100;; esac\n'}
    for name, status in (("git", 128), ("shutdown", 0), ("apt-get", 0), ("apt-cache", 0), ("systemctl", 0),
                         ("add-apt-repository", 0), ("python3.11", 0 if python_ready else 1), ("curl", 0),
                         ("nvidia-smi", 9)):
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{extra.get(name, "")}exit {status}\n')
        (folder / name).chmod(0o755)
    return folder


def run_bootstrap(tmp_path, *args, vendor="Amazon EC2", units=True, systemd=True, **stand_in_options):
    """Runs bootstrap.sh for real as root, with stand-ins for the commands that would change the machine, and its
    system files under `tmp_path/root`, on a machine that runs systemd unless `systemd` is false (the folder systemd
    makes at boot is one of the test's own). Returns (result, the commands called, the root folder)."""
    log = tmp_path / "calls.log"
    log.touch()
    bin_dir = stand_ins(tmp_path / "bin", log, **stand_in_options)
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "sys_vendor").write_text(vendor + "\n")
    root = tmp_path / "root"
    (root / "etc" / "systemd" / ("system" if units else "")).mkdir(parents=True, exist_ok=True)
    systemd_run = tmp_path / "run-systemd-system"
    if systemd:
        systemd_run.mkdir()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    result = subprocess.run(["bash", str(BOOTSTRAP), "--user", user, *args], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                             "COURSE_DMI_DIR": str(dmi), "COURSE_ROOT_DIR": str(root),
                                             "COURSE_SYSTEMD_RUN_DIR": str(systemd_run), "APT_RETRY_SECONDS": "0"})
    return result, log.read_text().splitlines(), root


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.sh runs as root (sudo, or a cloud box's first boot)")
@pytest.mark.parametrize("idle_minutes, vendor", [("45", "Amazon EC2"), ("0", "Amazon EC2"), ("45", "Dell Inc.")])
def test_a_setup_that_fails_before_the_idle_auto_stop_still_stops_a_cloud_box(tmp_path, idle_minutes, vendor):
    result, calls, root = run_bootstrap(tmp_path, "--repo", "https://example.invalid/private-kit.git",
                                        "--dir", str(tmp_path / "kit"), "--idle-minutes", idle_minutes, vendor=vendor)
    units = root / "etc" / "systemd" / "system"
    assert result.returncode == 128, result.stdout + result.stderr
    assert f"git clone --quiet https://example.invalid/private-kit.git {tmp_path / 'kit'}" in calls
    # it stopped at the clone, step 3: before that it only asked whether the auto-stop was there from an earlier run
    systemctl = [call for call in calls if call.startswith("systemctl")]
    shutdowns = [call for call in calls if call.startswith("shutdown")]
    if idle_minutes == "0" or vendor == "Dell Inc.":  # a learner's own machine: never powered off
        assert shutdowns == [] and "shuts down" not in result.stderr
        assert systemctl == ["systemctl is-enabled --quiet course-idle-stop.timer"] and not any(units.iterdir())
    else:
        assert shutdowns == ["shutdown -h +45 course setup failed; stopping in 45 minutes"]
        assert "step 3/8" in result.stderr and "shuts down in 45 minutes" in result.stderr
        # a restart before that shutdown (a spot box, `gpubox.py start`) is stopped too, 45 minutes after each boot
        assert systemctl == ["systemctl is-enabled --quiet course-idle-stop.timer", "systemctl daemon-reload",
                             "systemctl enable course-setup-failed.timer"]
        timer = configparser.ConfigParser()
        timer.read_string((units / "course-setup-failed.timer").read_text())
        assert timer["Timer"]["OnBootSec"] == "45min" and timer["Install"]["WantedBy"] == "timers.target"
        service = configparser.ConfigParser()
        service.read_string((units / "course-setup-failed.service").read_text())
        assert service["Service"]["ExecStart"] == "/usr/bin/systemctl poweroff"
        assert "after each restart" in result.stderr and "disable --now course-setup-failed.timer" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.sh runs as root (sudo, or a cloud box's first boot)")
def test_a_timer_that_cannot_be_written_is_a_warning_not_a_promise(tmp_path):
    result, calls, root = run_bootstrap(tmp_path, "--repo", "https://example.invalid/private-kit.git",
                                        "--dir", str(tmp_path / "kit"), "--idle-minutes", "45", units=False)
    assert result.returncode == 128
    assert "shutdown -h +45 course setup failed; stopping in 45 minutes" in calls  # this boot is still covered
    assert "WARN: could not install course-setup-failed.timer" in result.stderr
    assert "after each restart" not in result.stderr and "systemctl enable course-setup-failed.timer" not in calls


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.sh runs as root (sudo, or a cloud box's first boot)")
def test_a_machine_without_systemd_is_refused_in_one_line_before_anything_is_changed(tmp_path):
    """A container, or WSL without systemd: the services could not run, so no file is written and nothing installed."""
    kit = a_kit(tmp_path / "kit")
    result, calls, root = run_bootstrap(tmp_path, "--dir", str(kit), "--idle-minutes", "45", systemd=False)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"bootstrap.sh: this machine does not run systemd ({tmp_path / 'run-systemd-system'} is "
                           f"missing), and the course's JupyterLab and idle auto-stop are systemd services; nothing "
                           f"was changed. In WSL, turn systemd on")
    assert calls == [] and "==> step" not in result.stdout  # no apt-get, no systemctl, no shutdown
    assert [path for path in root.rglob("*") if path.is_file()] == [] and not (root / "usr").exists()
    dry = subprocess.run(["bash", str(BOOTSTRAP), "--dry-run", "--user", "root", "--dir", str(kit)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COURSE_SYSTEMD_RUN_DIR": str(tmp_path / "run-systemd-system")})
    assert dry.returncode == 0, dry.stderr  # --dry-run still lists the steps, and says a real run would stop
    assert "a run without --dry-run would stop here and change nothing" in dry.stdout
    assert dry.stdout.rstrip().endswith("nothing was changed.")


def a_kit(folder):
    """A checkout of the kit, as far as bootstrap.sh looks at one."""
    (folder / "setup").mkdir(parents=True)
    (folder / "requirements.txt").write_text("numpy\n")
    shutil.copy(BOOTSTRAP.parent / "idle_stop.py", folder / "setup" / "idle_stop.py")
    return folder


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.sh runs as root (sudo, or a cloud box's first boot)")
def test_a_run_that_installs_the_idle_auto_stop_stops_and_removes_the_stop_after_each_boot(tmp_path):
    kit = a_kit(tmp_path / "kit")
    units = tmp_path / "root" / "etc" / "systemd" / "system"
    units.mkdir(parents=True)  # what a failed run left, on a box that has restarted since
    for name in ("course-setup-failed.timer", "course-setup-failed.service"):
        (units / name).write_text("[Unit]\n")
    result, calls, root = run_bootstrap(tmp_path, "--dir", str(kit), "--idle-minutes", "45")
    # it got past the idle auto-stop (step 4) and failed at step 5: the stand-in python3.11 makes no venv
    assert "step 5/8" in result.stdout and result.returncode != 0
    systemctl = [call for call in calls if call.startswith("systemctl")]
    assert systemctl[-3:] == ["systemctl enable --now course-idle-stop.timer",
                              "systemctl disable --now course-setup-failed.timer", "systemctl daemon-reload"]
    assert sorted(path.name for path in units.iterdir()) == ["course-idle-stop.service", "course-idle-stop.timer"]
    assert "IDLE_MINUTES=45" in (root / "etc" / "default" / "course-idle-stop").read_text()
    assert (root / "usr" / "local" / "lib" / "course" / "idle_stop.py").is_file()
    assert not any(call.startswith("shutdown") for call in calls)  # the idle auto-stop stops this box now
    assert "shuts down" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.sh runs as root (sudo, or a cloud box's first boot)")
@pytest.mark.parametrize("failures, strict_calls", [(0, 1), (2, 3), (99, 10)])
def test_apt_get_update_is_tried_again_while_it_fails(tmp_path, failures, strict_calls):
    result, calls, _ = run_bootstrap(tmp_path, "--repo", "https://example.invalid/private-kit.git", "--dir",
                                     str(tmp_path / "kit"), "--idle-minutes", "0", apt_update_failures=failures,
                                     python_ready=False)  # so that step 2 installs Python 3.11 with apt-get
    updates = [call for call in calls if call.startswith("apt-get") and "update" in call]
    strict = "apt-get -o DPkg::Lock::Timeout=600 update -qq --error-on=any"  # a network failure is an error too
    assert updates == [strict] * strict_calls + (["apt-get -o DPkg::Lock::Timeout=600 update -qq"] if failures > 9 else [])
    assert result.stdout.count("trying again in a minute") == min(failures, 10)
    if failures < 10:  # it went on to install Python 3.11, then failed at the clone (step 3)
        assert "apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3.11 python3.11-venv git curl" in calls
        assert result.returncode == 128
    else:  # the plain update failed too: the step fails
        assert not any("install" in call for call in calls if call.startswith("apt-get"))
        assert result.returncode == 100 and "step 2/8" in result.stdout


@pytest.mark.parametrize("vendor, product, bios, on_vm", [
    ("Microsoft Corporation", "Surface Book 2", "", False),  # a learner's laptop
    ("Microsoft Corporation", "Virtual Machine", "", True),  # Azure
    ("Amazon EC2", "g4dn.xlarge", "", True),
    ("Xen", "HVM domU", "4.11.amazon", True),  # older EC2
    ("Google", "Google Compute Engine", "", True),
    ("Dell Inc.", "XPS 15", "", False),
])
def test_idle_stop_is_on_only_for_a_cloud_vm_by_its_firmware_names(tmp_path, vendor, product, bios, on_vm):
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    for name, value in (("sys_vendor", vendor), ("product_name", product), ("bios_version", bios)):
        (dmi / name).write_text(value + "\n")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    result = subprocess.run(["bash", str(BOOTSTRAP), "--dry-run", "--user", user],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COURSE_DMI_DIR": str(dmi)})
    assert result.returncode == 0, result.stderr
    assert f"idle auto-stop: {60 if on_vm else 0} min" in result.stdout
    # a shut-down Azure VM is billed until it is deallocated: said there, and only there
    assert ("az vm deallocate" in result.stdout) == (product == "Virtual Machine")
    if product == "Virtual Machine":
        off = subprocess.run(["bash", str(BOOTSTRAP), "--dry-run", "--user", user, "--idle-minutes", "00"],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "COURSE_DMI_DIR": str(dmi)})
        assert off.returncode == 0 and "az vm deallocate" not in off.stdout  # no auto-stop: nothing to warn of


# ------------------------------------------------------------------ idle auto-stop


class FakeJupyter(http.server.BaseHTTPRequestHandler):
    kernels = []
    token = "secret-token"

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path != "/api/kernels" or self.headers.get("Authorization") != f"token {self.token}":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps(self.kernels).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def jupyter():
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeJupyter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_busy_kernels_asks_jupyter_with_the_token(jupyter):
    FakeJupyter.kernels = [{"id": "a", "execution_state": "idle"},
                           {"id": "b", "execution_state": "busy"}]
    assert idle_stop.busy_kernels(jupyter, "secret-token") == 1
    assert idle_stop.busy_kernels(jupyter, "wrong") is None
    FakeJupyter.kernels = [{"id": "a", "execution_state": "idle"}]
    assert idle_stop.busy_kernels(jupyter, "secret-token") == 0
    assert idle_stop.busy_kernels("http://127.0.0.1:9", "secret-token") is None


def fake_nvidia_smi(tmp_path, output):
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    script.chmod(0o755)
    return str(script)


def test_gpu_utilization_reads_the_busiest_gpu(tmp_path):
    assert idle_stop.gpu_utilization(fake_nvidia_smi(tmp_path, "3\\n57\\n")) == 57
    assert idle_stop.gpu_utilization(str(tmp_path / "absent")) is None


def test_stops_only_after_the_idle_minutes(tmp_path):
    state = tmp_path / "last-busy"
    start = 1_000_000.0
    assert idle_stop.check(60, state, 0, 0, 10, now=start)[0] is False
    assert idle_stop.check(60, state, 0, 5, 10, now=start + 59 * 60)[0] is False
    assert idle_stop.check(60, state, 1, None, 10, now=start + 59 * 60)[0] is False  # busy kernel
    assert idle_stop.check(60, state, 0, 5, 10, now=start + 100 * 60)[0] is False
    assert idle_stop.check(60, state, 0, 80, 10, now=start + 150 * 60)[0] is False  # GPU busy
    stop, message = idle_stop.check(60, state, None, 2, 10, now=start + 210 * 60)
    assert stop is True and "stopping" in message
    assert idle_stop.check(60, state, 0, 10, 10, now=start + 400 * 60)[0] is False  # exactly the busy level
    assert float(state.read_text()) == start + 400 * 60  # counts as busy: the idle time starts again
    assert idle_stop.check(0, state, 0, 0, 10, now=start + 10**6)[0] is False  # 0 = off
    # after a restart, a last-busy time from before the boot no longer counts
    stop, _ = idle_stop.check(60, state, 0, 0, 10, now=start + 10**6, booted_at=start + 10**6 - 30)
    assert stop is False and float(state.read_text()) == start + 10**6


def iso(epoch):
    """A time as Jupyter Server writes a kernel's last_activity: ISO 8601 in UTC, ending in Z."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def test_last_kernel_activity_is_the_latest_of_the_kernels():
    kernels = [{"id": "a", "execution_state": "idle", "last_activity": iso(1_000_000_000)},
               {"id": "b", "execution_state": "idle", "last_activity": "2001-09-09T01:50:00.500000+00:00"},
               {"id": "c", "execution_state": "idle", "last_activity": "not a time"}, {"id": "d"}, "junk"]
    assert idle_stop.last_kernel_activity(kernels) == 1_000_000_200.5
    assert idle_stop.last_kernel_activity([]) is None and idle_stop.last_kernel_activity(None) is None


def test_cells_run_between_two_checks_keep_the_machine_up(tmp_path):
    """Short cells, each done before the next check: no check sees a busy kernel, but each kernel's
    last_activity moves, and the idle minutes count from it."""
    state = tmp_path / "last-busy"
    start = 1_000_000.0
    assert idle_stop.check(60, state, 0, 0, 10, now=start)[0] is False
    for minute in range(5, 125, 5):  # a cell ran a minute before each check, for two hours
        stop, message = idle_stop.check(60, state, 0, 0, 10, now=start + minute * 60,
                                        last_activity=start + (minute - 1) * 60)
        assert stop is False, message
    last_cell = start + 119 * 60
    assert float(state.read_text()) == last_cell
    assert idle_stop.check(60, state, 0, 0, 10, now=last_cell + 59 * 60, last_activity=last_cell)[0] is False
    assert idle_stop.check(60, state, 0, 0, 10, now=last_cell + 60 * 60, last_activity=last_cell)[0] is True
    # a kernel's clock ahead of this one's never counts as later than now
    assert idle_stop.check(60, state, 0, 0, 10, now=last_cell + 61 * 60, last_activity=last_cell + 10**6)[0] is False
    assert float(state.read_text()) == last_cell + 61 * 60


def test_main_counts_idle_minutes_from_the_last_kernel_activity(tmp_path, jupyter, capsys, shutdowns):
    FakeJupyter.kernels = [{"id": "a", "execution_state": "idle", "last_activity": iso(time.time() - 120)}]
    state = tmp_path / "last-busy"
    state.write_text(f"{time.time() - 61 * 60:.0f}\n")  # no check saw it busy for 61 minutes...
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    assert idle_stop.main(["--minutes", "60", "--token-file", str(token), "--jupyter-url", jupyter,
                           "--state-file", str(state), "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\n")]) == 0
    assert "idle for 2 of 60 min" in capsys.readouterr().out  # ...but a cell ran 2 minutes ago
    assert not shutdowns.exists()


def test_skypilot_yaml_uses_the_same_bootstrap_and_idle_rule():
    yaml = pytest.importorskip("yaml")
    task = yaml.safe_load((ROOT / "setup" / "skypilot.yaml").read_text())
    accelerators = task["resources"]["accelerators"]
    assert accelerators and set(accelerators.values()) == {1}
    assert task["resources"]["autostop"]["idle_minutes"] >= 1
    assert "setup/bootstrap.sh" in task["setup"] and "--idle-minutes 0" in task["setup"]
    assert "setup/idle_stop.py --exit-when-idle" in task["run"]
    assert ".course/jupyter-token" in task["run"]  # where bootstrap.sh writes the token
    for block in (task["setup"], task["run"]):
        syntax = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
        lint = subprocess.run(["shellcheck", "--shell=bash", "-"], input=block,
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout


def test_main_dry_run_end_to_end(tmp_path, jupyter, capsys, shutdowns):
    FakeJupyter.kernels = [{"id": "a", "execution_state": "busy"}]
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    args = ["--minutes", "60", "--token-file", str(token), "--jupyter-url", jupyter,
            "--state-file", str(tmp_path / "state" / "last-busy"),
            "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\\n"), "--dry-run"]
    assert idle_stop.main(args) == 0
    assert "1 busy kernel(s), GPU 0%, idle for 0 of 60 min" in capsys.readouterr().out
    assert (tmp_path / "state" / "last-busy").is_file()
    assert not shutdowns.exists()


def test_a_typo_in_the_settings_file_keeps_the_auto_stop_on(tmp_path, jupyter, capsys, shutdowns):
    FakeJupyter.kernels = []
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    state = tmp_path / "last-busy"
    state.write_text(f"{time.time() - 61 * 60:.0f}\n")  # idle for 61 minutes
    args = ["--token-file", str(token), "--jupyter-url", jupyter, "--state-file", str(state),
            "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\n"), "--dry-run"]
    assert idle_stop.main(["--minutes", "6O", "--gpu-busy-percent", "ten", *args]) == 0
    captured = capsys.readouterr()
    assert "IDLE_MINUTES '6O' in /etc/default/course-idle-stop is not a whole number: using 60" in captured.err
    assert "GPU_BUSY_PERCENT 'ten'" in captured.err
    assert "idle for 61 of 60 min: stopping the machine" in captured.out
    assert not shutdowns.exists()  # --dry-run


@pytest.mark.parametrize("busy", [False, True])
def test_without_dry_run_an_idle_machine_is_shut_down_once_and_a_busy_one_never(tmp_path, jupyter, capsys,
                                                                                 shutdowns, busy):
    FakeJupyter.kernels = [{"id": "a", "execution_state": "busy" if busy else "idle"}]
    state = tmp_path / "last-busy"
    state.write_text(f"{time.time() - 61 * 60:.0f}\n")  # last busy 61 minutes ago
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    args = ["--minutes", "60", "--token-file", str(token), "--jupyter-url", jupyter,
            "--state-file", str(state), "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\n")]
    assert idle_stop.main(args) == 0
    assert f"{int(busy)} busy kernel(s)" in capsys.readouterr().out
    if busy:
        assert not shutdowns.exists()
    else:
        assert shutdowns.read_text() == "-h now course idle auto-stop\n"


def test_after_a_restart_the_idle_minutes_count_from_the_boot(tmp_path, jupyter, capsys, shutdowns, monkeypatch):
    FakeJupyter.kernels = []
    state = tmp_path / "last-busy"
    state.write_text(f"{time.time() - 61 * 60:.0f}\n")  # last busy 61 minutes ago, before a boot 5 minutes ago
    monkeypatch.setattr(idle_stop, "boot_time", lambda: time.time() - 5 * 60)
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    assert idle_stop.main(["--minutes", "60", "--token-file", str(token), "--jupyter-url", jupyter,
                           "--state-file", str(state), "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\n")]) == 0
    assert "idle for 0 of 60 min" in capsys.readouterr().out
    assert not shutdowns.exists()


def test_a_state_file_that_cannot_be_written_is_one_line_in_the_log(tmp_path, jupyter, capsys):
    FakeJupyter.kernels = []
    (tmp_path / "a-file").write_text("")
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    status = idle_stop.main(["--token-file", str(token), "--jupyter-url", jupyter,
                             "--state-file", str(tmp_path / "a-file" / "last-busy"),
                             "--nvidia-smi", fake_nvidia_smi(tmp_path, "0\n"), "--dry-run"])
    assert status == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_exit_when_idle_returns_once_idle_without_shutting_down(tmp_path, jupyter, capsys, shutdowns):
    FakeJupyter.kernels = [{"id": "a", "execution_state": "idle"}]
    state = tmp_path / "last-busy"
    state.write_text(f"{time.time() - 90:.0f}\n")  # last busy 90 s ago, after this boot
    args = ["--minutes", "1", "--token-file", str(tmp_path / "no-token"), "--jupyter-url", jupyter,
            "--state-file", str(state), "--nvidia-smi", str(tmp_path / "absent"),
            "--exit-when-idle", "--interval", "0.01"]
    assert idle_stop.main(args) == 0
    assert "stopping the machine" in capsys.readouterr().out
    assert not shutdowns.exists()  # SkyPilot stops the machine itself


def test_idle_stop_is_off_on_a_machine_without_cloud_firmware_names(monkeypatch, tmp_path):
    """Which names mean a cloud VM is tested above, by running the script; here, that a machine with none of
    them (a learner's workstation) is never powered off, and that the names are read from the kernel's
    firmware folder unless a test points elsewhere."""
    monkeypatch.delenv("IDLE_MINUTES", raising=False)
    monkeypatch.setenv("COURSE_DMI_DIR", str(tmp_path))  # no firmware names at all
    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert "idle auto-stop: 0 min" in result.stdout
    assert 'DMI_DIR="${COURSE_DMI_DIR:-/sys/class/dmi/id}"' in BOOTSTRAP.read_text()
