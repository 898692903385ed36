"""Exercises that check themselves: `exercises.check("1.1", answer)` says "correct" or what is wrong.

Each lesson's "Exercises" section gives a checked exercise three code cells: the learner's answer
(tagged `exercise`, a stub such as `diagonal = None`), the solution (tagged `solution`; `make
exercises` writes learner copies without these cells) and a check (tagged `check`). A check compares
the answer with a reference it computes itself (SciPy, scikit-learn, Keras, or the lesson's own data),
and its message says what is wrong without giving the answer away. It never raises: a wrong answer
prints a line and the notebook runs on.
"""

import dis

import numpy as np

CHECK_MIMETYPE = "application/vnd.cnn-course.check+json"  # what the lesson tests look for
CHECKS = {}  # exercise number -> function(*answers, **context) returning None (correct) or what is wrong


class NotAnswered(Exception):
    """The answer is still the stub, or a function of it returns nothing: the message says what to fill in."""


def checker(number):
    """Registers a check function under an exercise number such as "1.1"."""
    def register(function):
        CHECKS[number] = function
        return function
    return register


def check(number, *answers, **context):
    """Checks the answer to exercise `number` and shows one line: "correct", or what is wrong."""
    line = verdict(number, *answers, **context)
    show(line, {"exercise": number, "correct": line.endswith(": correct."), "message": line})


def verdict(number, *answers, **context):
    """The line `check` shows: "Exercise N.k: correct." or "Exercise N.k: " and what is wrong."""
    if number not in CHECKS:
        raise KeyError(f"no exercise {number!r}; the exercises are {', '.join(sorted(CHECKS))}")
    try:
        problem = CHECKS[number](*answers, **context)
    except NotAnswered as stub:
        problem = str(stub)
    except Exception as error:  # noqa: BLE001 - the learner's code failed: say how, keep the notebook going
        problem = f"your answer raised {type(error).__name__}: {error}"
    return f"Exercise {number}: " + ("correct." if problem is None else problem)


def show(line, record):
    """Displays the check's line (and its record for the lesson tests) in a notebook; prints it elsewhere."""
    try:
        from IPython import get_ipython, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(line)
        return
    display.display({"text/plain": ("✔ " if record["correct"] else "✘ ") + line, CHECK_MIMETYPE: record}, raw=True)


def answered(value, what):
    """`value`, unless it is still a stub: None, `...`, or a function whose body does nothing (`...`, `pass`)."""
    code = getattr(value, "__code__", None)
    if value is None or value is Ellipsis or code and all(
            step.opname in ("RESUME", "RETURN_VALUE", "RETURN_CONST", "NOP") or (
                step.opname == "LOAD_CONST" and step.argval is None) for step in dis.get_instructions(code)):
        raise NotAnswered(f"not answered yet: {what}")
    return value


def returned(value, name):
    """`value`, what the learner's function `name` returned, unless it is None: a body without `return`."""
    if value is None:
        raise NotAnswered(f"`{name}` returns None: every way through its body must end with `return` and the result.")
    return value


def array(value, what, shape=None):
    value = np.asarray(answered(value, what), dtype=float)
    if shape is not None and value.shape != shape:
        return None, f"{what.split(':')[0]} has shape {value.shape}; it should be {shape}."
    return value, None


# Importing the lessons' modules registers their checks.
from utils.exercises import lesson_1, lesson_2, lesson_3, lesson_4, lesson_5, lesson_6  # noqa: E402,F401
