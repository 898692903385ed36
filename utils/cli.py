"""How the kit's command lines end: one line saying what happened and what to do next.

Every `python -m utils.<command>` runs its `main` through `run`: an
interruption (Ctrl-C) or an error ends with one line on stderr and a non-zero
exit status, never a traceback. `--debug` anywhere on the command line shows
the traceback instead, for reporting a bug.
"""

import argparse
import errno
import os
import pathlib
import re
import sys

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C
NEXT_STEP = {  # what to do about an error the operating system raised, by errno
    errno.EACCES: "check its permissions (ls -l), or use another path",
    errno.EPERM: "check its permissions (ls -l), or use another path",
    errno.EROFS: "it is on a read-only disk: choose another folder",
    errno.ENOENT: "check the path",
    errno.EEXIST: "something of that name is already there: choose another path",
    errno.ENOTDIR: "a file stands where a folder is needed: choose another path",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.ENOSPC: "the disk is full: free some space, then run the same command again",
}


def message(error):
    """The one line to print for `error`: the kit's own message, or the OS's made readable.

    The kit's messages already say what to do; an error straight from the
    operating system ("[Errno 13] Permission denied: 'x'") gets its reason,
    the path and a next step instead.
    """
    if isinstance(error, OSError) and error.strerror and error.errno is not None:
        where = f": {error.filename}" if error.filename else ""
        also = f" -> {error.filename2}" if error.filename2 else ""
        return f"{error.strerror}{where}{also}; {NEXT_STEP.get(error.errno, 'check the path and try again')}."
    return reason(str(error))


def reason(text):
    """The line of an error message that says what went wrong: the first, but for TensorFlow's (the last, after a
    stack trace) and Keras' wrapped ones (the second, before the arguments), without terminal colours."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("[[")]  # [[{{node ...}}]]: TensorFlow's graph
    if lines and lines[0].startswith("Graph execution error"):
        return lines[-1]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        return lines[1]
    return lines[0] if lines else ""


def folder(text):
    """An argparse type: a folder typed in a shell, taken from the folder the shell is in; an empty one is refused
    (it would mean that folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty: give a folder")
    return os.path.abspath(os.path.expanduser(text))


def notebook(text):
    """An argparse type: a lesson notebook's path; an empty one is refused (it would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty: give the path of a lesson's .ipynb file")
    return pathlib.Path(text)


def run(main, argv=None, expected=(ValueError, OSError), interrupted="run the same command again to carry on"):
    """Runs `main(argv)` and returns its exit status, turning exceptions into one line.

    Args:
        main: the command's `main(argv)`, returning an exit status.
        argv: the arguments (default: the command line's).
        expected: exception types whose message already says what to do (exit 2).
        interrupted: what to do after Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        return main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ninterrupted: {interrupted}.", file=sys.stderr)
        return INTERRUPTED
    except expected as error:
        if debug:
            raise
        print(f"error: {message(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug: say so in one line, and how to see more
        if debug:
            raise
        print(f"error: unexpected {type(error).__name__}: {reason(str(error))}. Run the same command with --debug to "
              "see where it happened, and report it to the course.", file=sys.stderr)
        return 1
