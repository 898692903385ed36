"""The kit's scripts (setup/*.py, benchmarks/*.py) as modules for the tests: they are files, not a package."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load(relative_path):
    """The script at `relative_path` from the kit's root (e.g. "setup/gpubox.py"), imported as a module."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
