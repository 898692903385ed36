"""docs/troubleshooting.md quotes every message the kit's code raises, word for word."""

import ast

import pytest

from utils import paths

DOC = paths.ROOT / "docs" / "troubleshooting.md"
MODULES = ["utils/paths.py", "utils/safely.py", "utils/schedules.py", "utils/layouts.py", "utils/data.py", "utils/downloads.py", "utils/images.py",
           "utils/lessons.py", "utils/copies.py", "utils/publish.py", "utils/slides.py", "utils/predict.py", "utils/serve.py",
           "utils/pipeline.py", "utils/evaluate.py", "utils/explain.py", "utils/digits.py", "utils/transfer.py", "setup/gpubox.py",
           "utils/hardware.py", "utils/training.py", "utils/resume.py", "setup/tf_config.py"]


def template(node):
    """A message as the doc quotes it: its literal text, with … for each value filled in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.values)
    if isinstance(node, ast.BinOp):
        return template(node.left) + template(node.right)
    return "…"


def raised_messages(module):
    tree = ast.parse((paths.ROOT / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name != "refuse":  # lessons.check_type's helper: its one template is checked below
                yield node.lineno, template(node.exc.args[0])


@pytest.mark.parametrize("module", MODULES)
def test_every_message_a_module_raises_is_in_the_troubleshooting_page(module):
    doc = DOC.read_text()
    missing = [f"{module}:{line}: {text}" for line, text in raised_messages(module) if text not in doc]
    assert not missing, "add these to docs/troubleshooting.md, as the code writes them:\n" + "\n".join(missing)


def test_the_messages_every_command_shares_are_there_too():
    doc = DOC.read_text()
    for text in ("> interrupted: …", "> error: unexpected …", "> FAILED: cell … (`…`) raised …: …",
                 "> -p … …: … is … (its default is …); give for example -p … ….", "--debug"):
        assert text in doc, text
    lessons = (paths.ROOT / "utils" / "lessons.py").read_text()
    assert 'f"-p {name} {value!r}: {name} is {kind} (its default is {default!r}); "' in lessons
    assert 'f"give for example -p {name} {example}."' in lessons


def test_the_check_would_catch_a_message_that_changed(tmp_path):
    changed = ast.parse('raise ValueError(f"no folder {x}: fetch the data first")').body[0]
    assert template(changed.exc.args[0]) not in DOC.read_text()
