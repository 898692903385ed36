"""docs/troubleshooting.md quotes every message the kit's code raises, prints to stderr or exits with, word for word."""

import ast
import re

import pytest

from utils import paths

DOC = paths.ROOT / "docs" / "troubleshooting.md"
MODULES = sorted(str(path.relative_to(paths.ROOT)) for folder in ("utils", "setup")
                 for path in (paths.ROOT / folder).rglob("*.py"))
SHARED = ("utils/cli.py", "utils/lessons.py")  # their "interrupted", "unexpected" and "FAILED" lines: checked below


def template(node, constants=None):
    """A message as the doc quotes it: its literal text, with … for each value filled in.

    `constants` maps the module's top-level names to their values, for a message kept in a constant
    (`raise RuntimeError(ADVICE.format(half=half))`).
    """
    constants = constants or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.values)
    if isinstance(node, ast.BinOp):
        return template(node.left, constants) + template(node.right, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return template(constants[node.id], constants)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return re.sub(r"\{[^{}]*\}", "…", template(node.func.value, constants))
    return "…"


def messages(module):
    """(line, template) of each message `module` raises, prints to stderr, exits with or gives argparse's
    `parser.error`, and each answer in a top-level `ERRORS` table (`utils.serve`'s refusals)."""
    tree = ast.parse((paths.ROOT / module).read_text())
    constants = {node.targets[0].id: node.value for node in tree.body
                 if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
    if isinstance(constants.get("ERRORS"), ast.Dict):
        for value in constants["ERRORS"].values:  # str.format templates: {name} stands for a value
            yield value.lineno, re.sub(r"\{[^{}]*\}", "…", template(value, constants))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name != "refuse":  # lessons.check_type's helper: its one template is checked below
                yield node.lineno, template(node.exc.args[0], constants)
        elif isinstance(node, ast.Call) and node.args and getattr(node.func, "attr", "") == "error" and getattr(
                node.func.value, "id", "") == "parser":  # argparse prints it after the usage line, exit status 2
            yield node.lineno, template(node.args[0], constants)
        elif isinstance(node, ast.Call) and node.args and module not in SHARED and (
                (getattr(node.func, "id", "") == "print" and any(
                    keyword.arg == "file" and getattr(keyword.value, "attr", "") == "stderr"
                    for keyword in node.keywords))
                or (getattr(node.func, "attr", "") == "exit" and getattr(node.func.value, "id", "") == "sys")):
            text = template(node.args[0], constants).strip()
            if text.strip("…. "):  # not a message made only of values (`print(error)`, `sys.exit(main())`)
                yield node.lineno, text


def test_every_module_is_checked():
    assert "utils/data.py" in MODULES and "setup/gpubox.py" in MODULES and "utils/birds.py" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_message_a_module_gives_is_in_the_troubleshooting_page(module):
    doc = DOC.read_text()
    missing = [f"{module}:{line}: {text}" for line, text in messages(module) if text not in doc]
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
    module = tmp_path / "changed.py"  # absolute: `messages` reads it as it reads the kit's modules
    module.write_text('import sys\n'
                      'def f(x):\n'
                      '    print(f"no photos in {x}: fetch them first", file=sys.stderr)\n'
                      '    raise ValueError(f"no folder {x}: fetch the data first")\n')
    found = dict(messages(str(module)))
    assert found == {3: "no photos in …: fetch them first", 4: "no folder …: fetch the data first"}
    assert not any(text in DOC.read_text() for text in found.values())


def test_the_check_finds_the_kits_messages():
    """A floor: if `messages` stopped seeing them, every page check above would pass with nothing to check."""
    assert sum(1 for module in MODULES for _ in messages(module)) >= 150


def test_the_check_reads_argparse_errors_and_the_servers_refusals(tmp_path):
    module = tmp_path / "cli.py"
    module.write_text('ERRORS = {"empty": "{name} is empty (0 bytes); choose a photo "\n'
                      '                   "file."}\n'
                      'def main(parser, args):\n'
                      '    parser.error(f"--port {args.port}: use a port number from 1 to 65535")\n')
    assert dict(messages(str(module))) == {1: "… is empty (0 bytes); choose a photo file.",
                                           4: "--port …: use a port number from 1 to 65535"}
    found = {text for _, text in messages("utils/serve.py")}
    assert "… is empty (0 bytes); choose a photo file (JPEG, PNG, GIF, BMP, WebP, TIFF or AVIF) and send it again." \
        in found and "--port …: use a port number from 1 to 65535" in found


def test_the_check_reads_messages_kept_in_constants_and_printed_ones():
    tree = ast.parse('ADVICE = "Lower BATCH_SIZE (to {half}) and run again."\n'
                     'raise RuntimeError(ADVICE.format(half=2))')
    constants = {tree.body[0].targets[0].id: tree.body[0].value}
    assert template(tree.body[1].exc.args[0], constants) == "Lower BATCH_SIZE (to …) and run again."
    lines = dict(messages("setup/tf_config.py"))
    assert any(text.startswith("error: no rank") for text in lines.values())
