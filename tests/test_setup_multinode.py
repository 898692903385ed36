"""Several machines on SkyPilot: the YAML files parse, and setup/tf_config.py builds TF_CONFIG.

TF_CONFIG is checked against what TensorFlow itself makes of it
(`tf.distribute.cluster_resolver.TFConfigClusterResolver`, the reader
MultiWorkerMirroredStrategy uses), without starting a cluster.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

import kit_scripts  # tests/kit_scripts.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "setup" / "tf_config.py"
IPS = "10.0.0.11\n10.0.0.12\n10.0.0.13\n"


tf_config = kit_scripts.load("setup/tf_config.py")


def run_script(*args, **variables):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYPILOT_")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env={**env, **variables},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["skypilot.yaml", "skypilot-multinode.yaml"])
def test_skypilot_files_parse(name):
    task = yaml.safe_load((ROOT / "setup" / name).read_text())
    assert {"resources", "setup", "run", "workdir"} <= set(task)
    assert set(task["resources"]["accelerators"]) == {"T4", "L4", "A10G"}


def test_multinode_file_runs_lesson_3_with_tf_config_on_every_node():
    task = yaml.safe_load((ROOT / "setup" / "skypilot-multinode.yaml").read_text())
    assert task["num_nodes"] == 2
    run = task["run"]
    assert 'TF_CONFIG="$(.venv/bin/python setup/tf_config.py --port "$TF_PORT")"' in run
    assert "export TF_CONFIG" in run and run.index("export TF_CONFIG") < run.index("utils.lessons run")
    assert ("-m utils.lessons run notebooks/03_cnn_from_scratch.ipynb -p SAMPLE False --no-html "
            "--out build/lessons") in run
    assert "utils.data download dogscats" in task["setup"]
    assert "sky launch -c course-multi setup/skypilot-multinode.yaml --num-nodes 2" in (
        ROOT / "setup" / "skypilot-multinode.yaml").read_text()
    assert "sky launch -c course-multi setup/skypilot-multinode.yaml --num-nodes 2" in (
        ROOT / "setup" / "README.md").read_text()


@pytest.mark.parametrize("count", [2, 3])
def test_every_node_gets_the_same_workers_in_ip_order_and_its_own_index(count):
    ips = "\n".join(IPS.split()[:count])
    configs = [json.loads(run_script(SKYPILOT_NODE_IPS=ips, SKYPILOT_NODE_RANK=str(rank),
                                     SKYPILOT_NUM_NODES=str(count)).stdout) for rank in range(count)]
    workers = [f"10.0.0.1{number}:12345" for number in range(1, count + 1)]
    assert [config["cluster"] for config in configs] == [{"worker": workers}] * count
    assert [config["task"] for config in configs] == [{"type": "worker", "index": rank} for rank in range(count)]


def test_flags_and_port_and_ipv6():
    result = run_script("--ips", "10.1.0.5\n10.1.0.6", "--rank", "1", "--port", "2222")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cluster": {"worker": ["10.1.0.5:2222", "10.1.0.6:2222"]},
                                         "task": {"type": "worker", "index": 1}}
    assert tf_config.build("fd00::1\nfd00::2", 0)["cluster"]["worker"] == ["[fd00::1]:12345", "[fd00::2]:12345"]


def test_tensorflow_reads_it_as_a_cluster_of_workers(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config.build(IPS, 2, 3)))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert resolver.task_type == "worker" and resolver.task_id == 2
    assert resolver.cluster_spec().as_dict() == {"worker": ["10.0.0.11:12345", "10.0.0.12:12345",
                                                            "10.0.0.13:12345"]}


@pytest.mark.parametrize("variables, args, message", [
    ({}, ("--rank", "0"), "error: no node IPs: give them one per line with --ips"),
    ({"SKYPILOT_NODE_IPS": IPS}, (), "error: no rank: give --rank"),
    ({"SKYPILOT_NODE_IPS": IPS, "SKYPILOT_NODE_RANK": "3"}, (), "error: rank 3 is not one of the 3 nodes; give --rank 0 to 2"),
    ({"SKYPILOT_NODE_IPS": IPS, "SKYPILOT_NODE_RANK": "-1"}, (), "error: rank -1 is not one of the 3 nodes"),
    ({"SKYPILOT_NODE_IPS": IPS, "SKYPILOT_NODE_RANK": "one"}, (), "error: the rank 'one' is not a whole number"),
    ({"SKYPILOT_NODE_IPS": "10.0.0.1,10.0.0.2", "SKYPILOT_NODE_RANK": "0"}, (),
     "error: '10.0.0.1,10.0.0.2' in the node IPs is not an IP address"),
    ({"SKYPILOT_NODE_IPS": "10.0.0.1\n10.0.0.1", "SKYPILOT_NODE_RANK": "0"}, (), "error: the node IPs list an address twice"),
    ({"SKYPILOT_NODE_IPS": IPS, "SKYPILOT_NODE_RANK": "0", "SKYPILOT_NUM_NODES": "2"}, (),
     "error: 3 node IPs but 2 nodes (SKYPILOT_NUM_NODES)"),
    ({"SKYPILOT_NODE_IPS": IPS, "SKYPILOT_NODE_RANK": "0"}, ("--port", "70000"), "error: --port must be from 1 to 65535"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(variables, args, message):
    result = run_script(*args, **variables)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message) and "Traceback" not in result.stderr


def test_a_stopped_skypilot_machine_is_resumed_with_its_autostop():
    """`sky start` without -i brings a machine back with no autostop (skylet ignores one set before the current
    boot), and `sky exec` runs no setup and sets none: the commands shown resume with `sky launch` instead."""
    yaml_text = (ROOT / "setup" / "skypilot.yaml").read_text()
    assert "#     sky launch -c course setup/skypilot.yaml      # resume a stopped one" in yaml_text
    for name in ("setup/skypilot.yaml", "setup/skypilot-multinode.yaml", "setup/README.md", "docs/troubleshooting.md"):
        commands = re.findall(r"^[#\s]*(sky (?:start|exec)\b.*)$", (ROOT / name).read_text(), flags=re.MULTILINE)
        assert all(" -i " in command and "sky exec" not in command for command in commands), (name, commands)


# ssh's stand-in for rsync (RSYNC_RSH): skips ssh's options and the host, runs the command in $BOX_HOME.
STAND_IN_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
    case "$1" in -*) shift ;; *) shift; break ;; esac
done
cd "$BOX_HOME" && exec sh -c "$*"
"""


def copy_back_commands(name):
    """The commands a page gives to copy the runs back before `sky down`, as one shell script."""
    lines = (ROOT / "setup" / name).read_text().splitlines()
    if name.endswith(".yaml"):
        start = next(i for i, line in enumerate(lines) if line.startswith("#     # before `sky down`"))
        lines = [line[6:] for line in lines[start:] if line.startswith("#     ")]
    else:
        start = next(i for i, line in enumerate(lines) if line.startswith("for index in models/*/runs.json"))
        lines = lines[start:]
    end = next(i for i, line in enumerate(lines) if line.startswith("sky down"))
    return "\n".join(line for line in lines[:end] if not line.startswith("#"))


@pytest.mark.parametrize("name, cluster, lesson", [("skypilot.yaml", "course", "05_transfer"),
                                                   ("README.md", "course", "05_transfer"),
                                                   ("skypilot-multinode.yaml", "course-multi", "03_cnn_from_scratch")])
def test_the_runs_are_copied_back_before_sky_down_without_the_machines_index(tmp_path, name, cluster, lesson):
    box, here = tmp_path / "box" / "sky_workdir" / "models" / lesson, tmp_path / "here" / "models" / lesson
    for folder, run in ((box, "20261201-100000-full"), (here, "20261130-090000-sample")):
        (folder / "runs" / run).mkdir(parents=True)
        (folder / "runs" / run / "finished.json").write_text(json.dumps({"made": str(folder)}))
        (folder / "runs.json").write_text(json.dumps({"latest": f"runs/{run}"}))
        (folder / "metrics.json").write_text(f"metrics of {folder}")
    ssh = tmp_path / "ssh"
    ssh.write_text(STAND_IN_SSH)
    ssh.chmod(0o755)
    script = copy_back_commands(name)
    assert f"{cluster}:sky_workdir/models/ models/" in script
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path / "here", capture_output=True, text=True,
                            env={**os.environ, "RSYNC_RSH": str(ssh), "BOX_HOME": str(tmp_path / "box")}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads((here / "runs" / "20261201-100000-full" / "finished.json").read_text()) == {"made": str(box)}
    assert (here / "runs" / "20261130-090000-sample" / "finished.json").is_file()
    assert (here / "metrics.json").read_text() == f"metrics of {here}"  # nothing of yours replaced
    assert not (here / "runs.json").exists()  # yours moved aside (rebuilt from every run), the machine's not copied
    (aside,) = here.glob("runs.json.before-sync-*")
    assert json.loads(aside.read_text()) == {"latest": "runs/20261130-090000-sample"}


def test_skypilot_is_not_offered_for_clouds_where_it_cannot_stop_a_machine():
    """SkyPilot cannot stop a Lambda or RunPod machine (only delete it, disk and runs with it): the idle stop would
    not work there, so neither is named among the clouds to use."""
    header = (ROOT / "setup" / "skypilot.yaml").read_text().split("# From the kit's folder")[0]
    (row,) = [line for line in (ROOT / "setup" / "README.md").read_text().splitlines()
              if line.startswith("| **Any cloud with SkyPilot**")]
    assert "(AWS, GCP,\n# Azure)" in header and "Not Lambda\n# or RunPod" in header
    assert row.endswith("| AWS, GCP or Azure accounts (not Lambda or RunPod: SkyPilot cannot stop a machine there) |")
