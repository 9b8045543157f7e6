"""The ``fortune`` cookie files (Debian ``fortunes`` and ``fortunes-min``), each entry labelled with its file."""

from pathlib import Path

import numpy as np

from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.data.corpora.locations import FORTUNES

_INSTALL = FORTUNES.install


def split_fortunes(text: str) -> list[str]:
    """The stripped, non-empty entries of a fortune file (entries are separated by lines holding only ``%``)."""
    entries: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.rstrip() == "%":
            entries.append([])
        else:
            entries[-1].append(line)
    return [entry for entry in ("\n".join(lines).strip() for lines in entries) if entry]


def load_fortunes(root: Path | None = None, min_chars: int = 20) -> LabelledTexts:
    """Fortune entries of at least ``min_chars`` characters, labelled with their file name (the category).

    Only regular files without an extension count as categories (``*.dat`` indexes, ``*.u8`` links, directories
    and symlinks are skipped); files are decoded as UTF-8, invalid bytes replaced. ``label_names`` are the
    categories with at least one kept entry, sorted. Raises :class:`CorpusError` if there are none.
    """
    root = FORTUNES.find() if root is None else Path(root)
    if not root.is_dir():
        raise CorpusError(f"fortune directory {root} not found; {_INSTALL}")
    per_category: dict[str, list[str]] = {}
    for path in sorted(root.iterdir()):
        if path.is_symlink() or not path.is_file() or path.suffix:
            continue
        entries = split_fortunes(path.read_bytes().decode("utf-8", errors="replace"))
        kept = [entry for entry in entries if len(entry) >= min_chars]
        if kept:
            per_category[path.name] = kept
    if not per_category:
        raise CorpusError(f"no fortune files with entries of at least {min_chars} characters in {root}; {_INSTALL}")
    names = sorted(per_category)
    texts = [entry for name in names for entry in per_category[name]]
    labels = np.repeat(np.arange(len(names), dtype=np.int64), [len(per_category[name]) for name in names])
    return LabelledTexts(texts=texts, labels=labels, label_names=names, source="fortunes")
