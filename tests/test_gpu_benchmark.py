"""benchmarks/gpu.py: one line and nothing written without a GPU; every measurement on a CPU with --allow-cpu --tiny.

The figures themselves need a GPU; here the script's own path is checked
(the lessons' networks read from the notebooks, `utils.hardware`, the
warm-up, the timing and the JSON), with tiny images, in float32 and in mixed
precision, with XLA on and off.
"""

import datetime
import json
import os
import pathlib
import subprocess
import sys

import kit_scripts  # tests/kit_scripts.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"


gpu = kit_scripts.load("benchmarks/gpu.py")


def run_script(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=1500)


def test_without_a_gpu_it_says_so_in_one_line_and_writes_nothing(tmp_path):
    result = run_script("--out", str(tmp_path / "gpu.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "no GPU found: nothing measured; run this on a machine with an NVIDIA GPU (`python -m utils.doctor` "
        "shows what TensorFlow sees), or add --allow-cpu --tiny to check the script."]
    assert not (tmp_path / "gpu.json").exists()


def test_the_plan_covers_the_lessons_on_a_gpu():
    planned = gpu.plan(tiny=False)
    lesson_3 = {(size, mixed, xla) for lesson, _, size, mixed, xla in planned if lesson == 3}
    assert lesson_3 == {(size, mixed, xla) for size in (128, 224) for mixed in (False, True) for xla in (False, True)}
    assert {(lesson, what, size) for lesson, what, size, _, _ in planned if lesson != 3} == {
        (4, "frozen-base epoch", 224), (4, "fine-tune epoch", 224), (5, "bird classifier epoch", 32)}


def test_file_name_from_the_gpu_name():
    assert gpu.slug("Tesla T4") == "tesla-t4"
    assert gpu.slug("NVIDIA A10G") == "nvidia-a10g"
    assert gpu.slug("NVIDIA GeForce RTX 4090 (24 GB)") == "nvidia-geforce-rtx-4090-24-gb"


def test_on_a_cpu_with_allow_cpu_tiny_it_measures_lesson_3_in_mixed_precision_with_and_without_xla(tmp_path):
    # the paths a GPU takes (mixed precision, XLA) on lesson 3's network; the others only change the network
    # or the size, and on a CPU each measurement costs tens of seconds of compiling (the whole plan: minutes)
    out = tmp_path / "gpu.json"
    result = run_script("--allow-cpu", "--tiny", "--lessons", "3", "--image-size", "32", "--precision",
                        "mixed_float16", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())
    measured = [(m["lesson"], m["what"], m["image_size"], m["precision"] == "mixed_float16", m["xla"])
                for m in record["measurements"]]
    assert measured == [(3, "improved network epoch", 32, True, False), (3, "improved network epoch", 32, True, True)]
    assert all(m["images_per_second"] > 0 and m["seconds_per_epoch"] > 0 for m in record["measurements"])
    assert all(m["peak_gpu_memory_mib"] is None for m in record["measurements"])  # no GPU here
    assert record["gpu"] == "CPU" and record["tiny"] is True
    assert record["versions"]["tensorflow"] and record["versions"]["keras"]
    assert datetime.datetime.fromisoformat(record["written"])
    assert f"wrote {out}" in result.stdout
