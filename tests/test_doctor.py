"""utils.doctor: runs on this machine (no GPU) and judges what it finds."""

import errno
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from utils import cli, doctor

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_doctor_runs_here_and_warns_plainly_about_the_missing_gpu():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "utils.doctor"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    gpu = next(line for line in lines if line.split()[1:2] == ["gpu"])
    assert gpu.startswith("WARN") and "no GPU" in gpu and "CPU" in gpu and "hours" in gpu
    for name in ("python", "tensorflow", "keras", "nvidia-smi", "mixed", "disk", "kaggle",
                 "downloads"):
        assert any(line.split()[1:2] == [name] for line in lines if line[:4] in ("OK  ", "WARN", "FAIL")), name
    assert "tensorflow       2.21.0" in result.stdout and "CUDA" in result.stdout
    assert " 0 FAIL" in lines[-1]


def test_kaggle_credentials_and_their_permissions(tmp_path, monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    missing = doctor.check_kaggle(home=tmp_path)
    assert missing.status == "OK" and "not needed" in missing.detail and "Generate New Token" in missing.detail
    token = tmp_path / ".kaggle" / "kaggle.json"
    token.parent.mkdir()
    token.write_text('{"username": "learner", "key": "0123"}')
    token.chmod(0o644)
    loose = doctor.check_kaggle(home=tmp_path)
    assert loose.status == "WARN" and "readable by others" in loose.detail
    assert loose.fix == f"`chmod 600 {token}`"
    token.chmod(0o600)
    assert doctor.check_kaggle(home=tmp_path).status == "OK"


def test_kaggle_tokens_wherever_the_kaggle_package_finds_them_and_malformed_ones(tmp_path, monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    token = tmp_path / ".config" / "kaggle" / "kaggle.json"
    token.parent.mkdir(parents=True)
    token.write_text('{"username": "learner", "key": "0123"}')
    token.chmod(0o600)
    found = doctor.check_kaggle(home=tmp_path)
    assert found.status == "OK" and str(token) in found.detail
    token.write_text('{"username": "learner", "ke')  # cut short
    broken = doctor.check_kaggle(home=tmp_path)
    assert broken.status == "WARN" and "is not a Kaggle token" in broken.detail and "Generate New Token" in broken.fix
    (tmp_path / ".kaggle").mkdir()  # the package then reads ~/.kaggle/kaggle.json only, as the kit's check does
    missing = doctor.check_kaggle(home=tmp_path)
    assert missing.detail.startswith("no Kaggle credentials: not needed")
    (tmp_path / ".kaggle" / "access_token").write_text("\n")  # an empty token: the package passes over it
    assert doctor.check_kaggle(home=tmp_path).detail.startswith("no Kaggle credentials")
    (tmp_path / ".kaggle" / "kaggle.json").write_text("{")  # the package passes over a broken one ...
    (tmp_path / ".kaggle" / "access_token").write_text("KGAT_0123")  # ... when it has today's kind of token
    (tmp_path / ".kaggle" / "access_token").chmod(0o600)
    assert doctor.check_kaggle(home=tmp_path) == ("OK", "kaggle", f"{tmp_path / '.kaggle' / 'access_token'} (mode 600)",
                                                  "")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123")
    assert doctor.check_kaggle(home=tmp_path).detail == "credentials in KAGGLE_API_TOKEN"


def test_downloads_lists_present_and_missing(tmp_path):
    data = tmp_path / "data"
    (data / "dogscats" / "train").mkdir(parents=True)
    (data / "dogscats" / "test").mkdir()  # Kaggle's download: train/ and test/
    (data / "mnist").mkdir()  # an empty folder is not a download
    (data / "cub200").mkdir()
    (data / "cub200" / "CUB_200_2011.tgz.part").write_bytes(b"x" * 2_000_000)  # an interrupted download
    (tmp_path / "keras" / "models").mkdir(parents=True)
    for name, _ in doctor.downloads.VGG16_WEIGHTS.values():  # lesson 4 needs both
        (tmp_path / "keras" / "models" / name).write_bytes(b"weights")
    finding = doctor.check_downloads(data_dir=data, keras_home=tmp_path / "keras")
    assert "datasets downloaded: dogscats;" in finding.detail
    assert "mnist" in finding.detail.split("not yet:")[1]
    assert "cub200 partly downloaded (2 MB)" in finding.detail and "it resumes" in finding.fix
    assert "cub200" not in finding.detail.split("not yet:")[1]
    assert "VGG16 weights: cached" in finding.detail
    assert "`python -m utils.data download NAME` gets one" in finding.fix  # the lessons never download datasets


def test_disk_thresholds_against_the_free_space_measured_here(tmp_path):
    free_gb = shutil.disk_usage(tmp_path).free / 1e9  # the reference: what the file system says now
    ok = doctor.check_disk(tmp_path, min_free_gb=free_gb / 2)
    assert ok.status == "OK" and ok.detail.endswith(f" GB free for {tmp_path}")
    assert float(ok.detail.split()[0]) == pytest.approx(free_gb, abs=0.5)  # other jobs write to this disk too
    warn = doctor.check_disk(tmp_path / "not" / "yet", min_free_gb=free_gb * 2)  # a folder not made yet: its parent
    assert warn.status == "WARN" and warn.detail.endswith(f" GB free for {tmp_path}") and "--disk-gb" in warn.fix
    short = doctor.check_disk(tmp_path, min_free_gb=free_gb * 4)  # under a third of what is needed
    assert short.status == "FAIL" and "--disk-gb" in short.fix


def test_a_data_folder_that_is_a_file_is_a_disk_fail_that_says_what_to_do(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.write_text("")  # COURSE_DATA_DIR=/some/file
    monkeypatch.setattr(doctor.paths, "DATA", data)
    for given in (None, data / "cifar10"):  # the data folder itself, or a folder inside it
        assert doctor.check_disk(given, min_free_gb=0.001) == doctor.Finding(
            "FAIL", "disk", f"the data folder {given or data}: {data} is a file",
            "point COURSE_DATA_DIR at a folder, or move that file away")


def test_mixed_precision_verdicts():
    assert doctor.check_mixed_precision([]).status == "WARN"
    assert doctor.check_mixed_precision([{"compute_capability": (7, 5)}]).status == "OK"
    old = doctor.check_mixed_precision([{"compute_capability": (6, 1)}])
    assert old.status == "WARN" and "compute capability 6.1" in old.detail


def test_report_shows_status_and_fix():
    text = doctor.report([doctor.Finding("FAIL", "disk", "1 GB free", "free some space")])
    assert text.splitlines()[0].startswith("FAIL  disk") and "fix: free some space" in text


def deny_reading(monkeypatch, folder):
    """Makes `folder` behave as after `chmod 000` even for root: nothing in it can be listed or stat()ed."""
    real_stat, real_scandir, real_listdir = pathlib.Path.stat, os.scandir, os.listdir

    def denied(path):
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    def stat(self, *args, **kwargs):
        if folder in self.parents:
            raise denied(self)
        return real_stat(self, *args, **kwargs)

    def scandir(path="."):
        if pathlib.Path(path) == folder:
            raise denied(path)
        return real_scandir(path)

    def listdir(path="."):
        if pathlib.Path(path) == folder:
            raise denied(path)
        return real_listdir(path)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)


def test_an_unreadable_dataset_folder_is_a_fail_that_names_it(tmp_path):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    (data / "mnist" / "mnist.npz").write_bytes(b"npz")
    (data / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        deny_reading(monkeypatch, data / "cifar10")
        finding = doctor.readable("downloads", lambda: doctor.check_downloads(data_dir=data,
                                                                              keras_home=tmp_path / "keras"))
    assert finding.status == "FAIL" and finding.detail == f"cannot read {data / 'cifar10'} (permission denied)"
    assert finding.fix.startswith(f"fix its permissions: `chmod -R u+rwX {data / 'cifar10'}`")
    # no weights in this Keras home: the learner is told lesson 4 fetches them, not to run `download`
    assert doctor.check_downloads(data_dir=data, keras_home=tmp_path / "keras").detail.endswith(
        "VGG16 weights: not cached yet: vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (about 59 MB), "
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5 (about 553 MB); Keras downloads each the first time lesson 4 "
        "needs it")
    # the base alone, as a machine that ran only lesson 4's bottleneck route has it: the full network is still due
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"w")
    assert doctor.check_downloads(data_dir=data, keras_home=tmp_path / "keras").detail.endswith(
        "VGG16 weights: not cached yet: vgg16_weights_tf_dim_ordering_tf_kernels.h5 (about 553 MB); Keras "
        "downloads each the first time lesson 4 needs it")


def test_an_unreadable_data_folder_is_one_fail_and_the_other_checks_still_print(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    monkeypatch.setattr(doctor.paths, "DATA", data)
    monkeypatch.setattr(doctor, "check_frameworks", lambda: [doctor.Finding("OK", "tensorflow", "2.21.0")])
    monkeypatch.setattr(doctor, "check_gpus", lambda: ([doctor.Finding("WARN", "gpu", "no GPU")], []))
    deny_reading(monkeypatch, data)
    assert cli.run(doctor.main, []) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert f"FAIL  downloads        cannot read {data} (permission denied)" in lines
    assert f"{'':<22}fix: fix its permissions: `chmod -R u+rwX {data}`" in out
    for name in ("python", "tensorflow", "gpu", "nvidia-smi", "mixed", "disk", "kaggle"):
        assert any(line.split()[1:2] == [name] for line in lines if line[:4] in ("OK  ", "WARN", "FAIL")), name
    assert " 1 FAIL," in lines[-1]


def test_a_check_that_may_not_read_a_folder_fails_alone(tmp_path, monkeypatch):
    secret = tmp_path / "home" / ".kaggle"
    secret.mkdir(parents=True)
    deny_reading(monkeypatch, secret)
    finding = doctor.readable("kaggle", lambda: (secret / "kaggle.json").is_file())
    assert finding == doctor.Finding("FAIL", "kaggle", f"cannot read {secret} (permission denied)",
                                     f"fix its permissions: `chmod -R u+rwX {secret}` (if another user owns "
                                     f"it: `sudo chown -R $USER {secret}`)")


def test_help_shows_what_it_does_and_unknown_options_are_refused():
    def doctor_command(*args):
        return subprocess.run([sys.executable, "-m", "utils.doctor", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)

    shown = doctor_command("--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python -m utils.doctor")
    assert "health check of this machine" in shown.stdout
    assert "checks:" not in shown.stdout  # no check ran
    refused = doctor_command("--fast")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("usage: python -m utils.doctor")
    assert "error: unrecognized arguments: --fast" in refused.stderr
