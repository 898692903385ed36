"""Test-wide settings: a headless plotting backend and quiet TensorFlow logs; a folder of executed lessons."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
for _name in ("NO_PROXY", "no_proxy"):  # the tests' servers are on 127.0.0.1: never through a proxy the host sets
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1,localhost"]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def executed_lessons(tmp_path_factory):
    """A folder of lessons executed in smoke mode, shared by the whole session: the smoke test of each lesson
    (tests/test_notebooks.py) leaves its executed copy here, and tests/test_publish.py builds slides and the
    site from them instead of running the lessons a second time (it runs any that are missing)."""
    return tmp_path_factory.mktemp("executed-lessons")
