"""A health check of the machine the course runs on: `python -m utils.doctor` (`make doctor`, `setup/bootstrap.sh`).

Each finding is OK, WARN or FAIL with its fix; the command exits 1 when something FAILs.
"""

import argparse
import collections
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import time

from utils import cli, downloads, paths

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

EXPECTED = {"python": "3.11", "tensorflow": "2.21.0", "keras": "3.15.1"}
MIN_FREE_GB = 10  # the full datasets unpacked, with room for models
GPU_FIX = ("on an NVIDIA GPU machine run `sudo setup/bootstrap.sh`, or rent one with "
           "`.venv/bin/python setup/gpubox.py launch` (see setup/README.md)")
DRIVER_FIX = "`sudo ubuntu-drivers install`, then reboot"


Finding = collections.namedtuple("Finding", "status name detail fix", defaults=[""])
Finding.__doc__ = 'One line of the report: status is "OK", "WARN" or "FAIL"; fix is what to do about it, or "".'


def check_python():
    version = platform.python_version()
    if version.startswith(EXPECTED["python"] + "."):
        return Finding("OK", "python", version)
    return Finding("WARN", "python", version,
                   f"the kit is pinned for Python {EXPECTED['python']}; create .venv with it")


def check_frameworks():
    """TensorFlow and Keras versions, and the CUDA/cuDNN TensorFlow was built for."""
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        return [Finding("FAIL", "tensorflow", f"not importable ({error})",
                        "run `make lessons` (creates .venv) and use .venv/bin/python")]
    build = tf.sysconfig.get_build_info()
    cuda = (f"built for CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')}"
            if build.get("is_cuda_build") else "CPU-only build")
    fix = "the lessons expect {}: `.venv/bin/pip install -r requirements.txt`"
    return [Finding("OK", name, version + extra) if version == EXPECTED[name]
            else Finding("WARN", name, version + extra, fix.format(EXPECTED[name]))
            for name, version, extra in [("tensorflow", tf.__version__, f" ({cuda})"),
                                         ("keras", keras.__version__, "")]]


def check_gpus():
    """The GPUs TensorFlow sees, each running a small matrix product; returns (findings, their device details)."""
    try:
        import tensorflow as tf
    except ImportError:
        return [], []
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return [Finding("WARN", "gpu", "TensorFlow sees no GPU: the lessons run on the CPU. Sample mode (the "
                        "default) still takes minutes; full runs of lessons 2, 4 and 5 take hours instead of minutes",
                        GPU_FIX)], []
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    findings = []
    for index, (gpu, detail) in enumerate(zip(gpus, details)):
        label = detail.get("device_name", gpu.name)
        try:
            with tf.device(f"/GPU:{index}"):
                matrix = tf.random.stateless_normal((1024, 1024), seed=(1, 2))
                start = time.perf_counter()
                total = float(tf.reduce_sum(tf.matmul(matrix, matrix)))
                seconds = time.perf_counter() - start
        except Exception as error:  # a broken driver shows up here, report it plainly
            findings.append(Finding("FAIL", f"gpu {index}", f"{label}: {error}",
                                    f"check `nvidia-smi`; reinstall the driver with {DRIVER_FIX}"))
            continue
        nan = total != total
        findings.append(Finding("FAIL" if nan else "OK", f"gpu {index}",
                                f"{label}: 1024x1024 matmul in {seconds * 1000:.0f} ms",
                                "the GPU returned NaN: reboot, then check `nvidia-smi`" if nan else ""))
    return findings, details


def check_nvidia_smi():
    if shutil.which("nvidia-smi") is None:
        return Finding("WARN", "nvidia-smi", "not found: this machine has no NVIDIA driver", GPU_FIX)
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,utilization.gpu", "--format=csv,noheader"]
    result = subprocess.run(query, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return Finding("FAIL", "nvidia-smi", result.stderr.strip() or "failed",
                       f"the driver is not working: {DRIVER_FIX}")
    return Finding("OK", "nvidia-smi", "; ".join(result.stdout.strip().splitlines()))


def check_mixed_precision(gpu_details):
    """Whether mixed_float16 pays on these GPUs (`check_gpus`'s details): compute capability 7.0 or more."""
    if not gpu_details:
        return Finding("WARN", "mixed precision", "no GPU, so no speed-up; lessons use float32",
                       "nothing to do on a CPU")
    lowest = min((d["compute_capability"] for d in gpu_details if d.get("compute_capability")), default=None)
    capability = "{}.{}".format(*lowest) if lowest else "unknown"
    if lowest and lowest >= (7, 0):
        return Finding("OK", "mixed precision", f"supported (compute capability {capability}): "
                       "`keras.mixed_precision.set_global_policy('mixed_float16')` speeds up training")
    return Finding("WARN", "mixed precision", f"this GPU (compute capability {capability}) gains little from it",
                   "keep the default float32")


def check_disk(folder=None, min_free_gb=MIN_FREE_GB):
    folder = given = pathlib.Path(folder or paths.DATA)
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():  # nothing can be downloaded into it
        return Finding("FAIL", "disk", f"the data folder {given}: {folder} is a file",
                       "point COURSE_DATA_DIR at a folder, or move that file away")
    free_gb = shutil.disk_usage(folder).free / 1e9
    detail = f"{free_gb:.1f} GB free for {folder}"
    if free_gb >= min_free_gb:
        return Finding("OK", "disk", detail)
    return Finding("FAIL" if free_gb < min_free_gb / 3 else "WARN", "disk", detail,
                   f"the full datasets need about {min_free_gb} GB: free some space, or on a cloud box launch with a "
                   "bigger --disk-gb")


def check_kaggle(home=None):
    """Kaggle credentials (only `download dogscats --source kaggle` needs them) and their permissions: in the order
    the `kaggle` package tries them, a token in the environment or in ~/.kaggle, an older kaggle.json, a login."""
    for variables in (["KAGGLE_API_TOKEN"], ["KAGGLE_USERNAME", "KAGGLE_KEY"]):
        if all(os.environ.get(variable) for variable in variables):
            return Finding("OK", "kaggle", f"credentials in {' / '.join(variables)}")
    folder, legacy = pathlib.Path(home or pathlib.Path.home()) / ".kaggle", downloads.kaggle_token(home)
    files = [folder / "access_token", folder / "access_token.txt", legacy, folder / "credentials.json"]
    token = next((path for path in files if path.is_file() and (  # the package passes over an empty one
        downloads.valid_kaggle_token(path) if path == legacy else path.read_text(errors="replace").strip())), None)
    new_token = f"{downloads.NEW_KAGGLE_TOKEN} (or run `.venv/bin/kaggle auth login`)"
    if token is None and legacy.is_file():
        return Finding("WARN", "kaggle", f'{legacy} is not a Kaggle token (it needs JSON with "username" and "key")',
                       f"{new_token}; and move {legacy} away")
    if token is None:
        return Finding("OK", "kaggle", "no Kaggle credentials: not needed (dogs vs cats downloads from Microsoft "
                       "without an account). For Kaggle's unlabelled test photos (`download dogscats --source "
                       f"kaggle`): {new_token}")
    mode = token.stat().st_mode & 0o777
    if mode & 0o077:
        return Finding("WARN", "kaggle", f"{token} is readable by others (mode {mode:o})", f"`chmod 600 {token}`")
    return Finding("OK", "kaggle", f"{token} (mode {mode:o})")


def unreadable_path(path):
    """The folder whose permissions stop `path` being read (after `chmod 000 data/cifar10`, data/cifar10)."""
    path = pathlib.Path(path)
    for part in [*reversed(path.parents), path][1:]:
        try:
            part.stat()
        except PermissionError:
            return part.parent
        except OSError:
            break
    return path


def readable(name, check):
    """Runs `check()`; a folder it may not read makes it a FAIL named `name`, and the other checks go on."""
    try:
        return check()
    except PermissionError as error:
        if not error.filename:
            return Finding("FAIL", name, f"cannot read {error} (permission denied)",
                           "fix the permissions of the kit's folders")
        folder = unreadable_path(error.filename)
        quoted = shlex.quote(str(folder))
        return Finding("FAIL", name, f"cannot read {folder} (permission denied)",
                       f"fix its permissions: `chmod -R u+rwX {quoted}` (if another user owns it: `sudo chown -R "
                       f"$USER {quoted}`)")


def check_downloads(data_dir=None, keras_home=None):
    """Which datasets are downloaded (whole, partly, not yet), and VGG16's weights (run it through `readable`)."""
    data_dir = pathlib.Path(data_dir or paths.DATA)
    present, partly, missing = [], [], []
    for name, dataset in downloads.DATASETS.items():
        folder = data_dir / name
        variants = [dataset] + [other for (key, _), other in downloads.OTHER_SOURCES.items() if key == name]
        if any(all((folder / file).exists() for file in variant.files) for variant in variants):
            present.append(name)
        elif folder.is_dir() and (parts := list(folder.glob("*.part"))):
            partly.append(f"{name} partly downloaded ({sum(part.stat().st_size for part in parts) / 1e6:.0f} MB)")
        else:
            missing.append(name)
    keras_home = pathlib.Path(keras_home or os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras")
    absent = [f"{name} ({size})" for name, size in downloads.VGG16_WEIGHTS.values()
              if not (keras_home / "models" / name).is_file()]
    weights = (f"not cached yet: {', '.join(absent)}; Keras downloads each the first time lesson 4 needs it"
               if absent else "cached")
    detail = [f"datasets downloaded: {', '.join(present) or 'none'}", *partly,
              f"not yet: {', '.join(missing) or 'none'}", f"VGG16 weights: {weights}"]
    fixes = ["run `python -m utils.data download NAME` again to finish: it resumes" if partly else "",
             "`python -m utils.data download NAME` gets one (until then the lessons use drawn stand-ins or "
             "scikit-learn's digits)" if missing else ""]
    return Finding("OK", "downloads", "; ".join(detail), "; ".join(filter(None, fixes)))


def report(findings):
    """The findings as aligned lines, each fix on a line of its own below."""
    return "\n".join(f"{f.status:<5} {f.name:<16} {f.detail}" + (f"\n{'':<22}fix: {f.fix}" if f.fix else "")
                     for f in findings)


def main(argv=None):
    """The command line: `python -m utils.doctor` (no options but --help)."""
    parser = argparse.ArgumentParser(prog="python -m utils.doctor", description="A health check of this machine for "
                                     "the course: Python, TensorFlow, GPUs, disk, Kaggle credentials and downloads "
                                     "(exits 1 when a check FAILs).")
    parser.parse_args(argv)
    findings = [check_python(), *check_frameworks()]
    gpu_findings, gpu_details = check_gpus()
    findings += [*gpu_findings, check_nvidia_smi(), check_mixed_precision(gpu_details), readable("disk", check_disk),
                 readable("kaggle", check_kaggle), readable("downloads", check_downloads)]
    print(report(findings))
    counts = collections.Counter(finding.status for finding in findings)
    print(f"\n{len(findings)} checks: {counts['FAIL']} FAIL, {counts['WARN']} WARN")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
