"""Atomic file writes: a reader sees either the old file or the complete new one, never a torn write.

Temporary files are named ``.<target>.<random>.tmp`` beside their target; a process killed mid-write leaves one
behind, which :func:`remove_stale_temporaries` deletes the next time a writer holds the folder's lock. Files get
the mode a plain ``open()`` would give them (0666 minus the umask), not ``mkstemp``'s private 0600.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def current_umask() -> int:
    """The process umask (read from /proc where available, so no other thread sees it change)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())  # the body may have replaced the file
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporaries an interrupted :func:`atomic_path` left anywhere under ``folder``; returns how many.

    Only safe while no other process writes to ``folder`` (hold its lock).
    """
    removed = 0
    for path in folder.rglob(f".*{TEMPORARY_SUFFIX}"):
        if path.is_file() and path.name.count(".") >= 3:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
