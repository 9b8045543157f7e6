"""An exclusive OS lock on an output folder (``flock`` on ``.lock``), released when the process exits or dies."""

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


class FolderLocked(ValueError):
    """Another process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the body; FolderLocked at once (no waiting) if another process holds it.

    The kernel releases a ``flock`` when its descriptor closes, so a killed process never leaves a stale lock.
    """
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderLocked(
                f"{folder} is being written by another dictlab process (pid {holder}); wait for it to finish or "
                "choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
