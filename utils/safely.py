"""Writing files so that nothing a learner made is lost.

A write is all or nothing (`write_text`), a read-only file is left as it is
(`is_read_only`), and one command at a time builds in a folder (`locked`).
Every module that writes a record, an index or a notebook uses these.
"""

import contextlib
import fcntl
import os
import pathlib
import threading


def write_text(path, text):
    """Writes `text` to `path` all or nothing: a hidden `.part` file first, then renamed over it.

    Each writer has its own `.part` file, so two programs writing the same
    file at once each leave a whole one (the last rename wins).

    A later run trusts what it finds (metrics, indexes, notebooks, caches'
    markers): an interrupted or failed write must leave the old file, never
    half a new one. A symbolic link is followed (the file it points to is
    replaced, the link stays), and a replaced file keeps its permissions.

    Raises:
        PermissionError: the file exists and is read-only (it is left alone).
    """
    path = pathlib.Path(path)
    if path.is_symlink():
        path = path.resolve()
    mode = None
    if path.exists():
        if is_read_only(path):
            raise PermissionError(f"{path} is read-only: it was left as it is; make it writable "
                                  f"(chmod u+w {path}) to let the kit update it.")
        mode = path.stat().st_mode & 0o7777
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")  # one per writer
    try:
        partial.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def is_read_only(path):
    """True for a file its owner means to keep as it is: not writable for this user, or for nobody.

    A rename needs no permission on the file itself, so the kit's all-or-nothing
    writes must ask (root may write anything, but 0o444 still says "leave me alone").
    """
    path = pathlib.Path(path)
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222


@contextlib.contextmanager
def locked(folder, what):
    """One command at a time builds in `folder`: the others wait here, and say what they wait for.

    Two terminals organizing or downloading into the same folder would
    otherwise delete or half-fill each other's work. The lock is a hidden
    `.lock` file next to `folder`, held with `fcntl.flock`, so the operating
    system releases it when a command ends in any way (Ctrl-C, a crash).

    Args:
        folder: the folder about to be built or filled.
        what: what is being done, for the waiting message ("organizing …").
    """
    folder = pathlib.Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_file = folder.parent / f".{folder.name}.lock"
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"Waiting: another command is {what} in {folder}; this one carries on when it ends.",
                  flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
