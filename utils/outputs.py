"""What an executed lesson shows in the slides and on the course site (see `utils.slides`, `utils.publish`).

Learners and an audience see the exercises, not their answers: no cell tagged `solution`, no verdicts of the
`check` cells; no stderr (TensorFlow's log, progress bars); and the kit's folders as a learner types them
(`models/...`, `data/...`), not as one machine's absolute paths.
"""

import re
import tempfile

from utils import paths

SOLUTION_NOTE = ("In the lesson as it is committed, a cell tagged `solution` sits between the two and answers it; "
                 "`make exercises` writes copies of the lessons without those cells to `build/exercises/`, to work in.")


def without_solutions(notebook):
    """`notebook` (in place; returned) as learners see it: no cell tagged `solution`, no outputs in the cells tagged
    `check` (they ran after the solution: "correct"), no SOLUTION_NOTE (the sentence on the solution cells)."""
    notebook.cells = [cell for cell in notebook.cells if "solution" not in cell.metadata.get("tags", [])]
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and SOLUTION_NOTE in cell.source:
            cell.source = re.sub(rf" ?{re.escape(SOLUTION_NOTE)}", "", cell.source)
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            cell.update(outputs=[], execution_count=None)
    return notebook


def relative_paths(text):
    """`text` with the kit's folders written from its root (`models/...`) and temporary folders' names left out."""
    for folder, shown in ((paths.MODELS, "models/"), (paths.DATA, "data/"), (paths.ROOT, "")):
        text = text.replace(f"{folder}/", shown)
    return re.sub(rf"{re.escape(tempfile.gettempdir())}/tmp\w+/", "", text)


def without_stderr(notebook):
    """`notebook` (in place; returned) without its outputs to stderr (TensorFlow's log, progress bars), and with
    `relative_paths` in the text of the others."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if not (out.output_type == "stream" and out.name == "stderr")]
            for out in cell.outputs:
                texts = out if out.output_type == "stream" else out.get("data", {})
                for key in {"text", "text/plain", "text/html"} & set(texts):
                    texts[key] = relative_paths(texts[key])
    return notebook
