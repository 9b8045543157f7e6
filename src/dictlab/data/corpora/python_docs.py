"""Prose paragraphs of the Python documentation sources (Debian ``python3.X-doc``), labelled by section."""

from pathlib import Path

import numpy as np

from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.data.corpora.locations import PYTHON_DOCS

_INSTALL = PYTHON_DOCS.install
_MARKUP_STARTS = ("..", ":", "=", "-", "*")  # directives, comments, field lists, rules/titles, bullet lists


def prose_paragraphs(text: str, min_chars: int = 80) -> list[str]:
    """The blank-line separated paragraphs of reST ``text`` that look like prose, whitespace collapsed to spaces.

    Paragraphs whose first non-blank character starts one of ``..``, ``:``, ``=``, ``-``, ``*`` are dropped, as
    are those shorter than ``min_chars`` characters after joining.
    """
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    paragraphs = []
    for block in blocks:
        joined = " ".join(" ".join(block).split())
        if joined and not joined.startswith(_MARKUP_STARTS) and len(joined) >= min_chars:
            paragraphs.append(joined)
    return paragraphs


def load_python_docs(root: Path | None = None, min_chars: int = 80) -> LabelledTexts:
    """Prose paragraphs of every ``root/<section>/**/*.rst.txt``, labelled with ``<section>`` (its top folder).

    Files directly under ``root`` (``about``, ``glossary``, ...) belong to no section and are skipped. Files are
    read in sorted path order, decoded as UTF-8 (invalid bytes replaced); ``label_names`` are the sections with at
    least one kept paragraph, sorted. Raises :class:`CorpusError` if ``root`` is missing or yields nothing.
    """
    root = PYTHON_DOCS.find() if root is None else Path(root)
    if not root.is_dir():
        raise CorpusError(f"Python documentation sources {root} not found; {_INSTALL}")
    per_section: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.rst.txt")):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        per_section.setdefault(parts[0], []).extend(prose_paragraphs(text, min_chars))
    names = sorted(name for name, paragraphs in per_section.items() if paragraphs)
    if not names:
        raise CorpusError(f"no paragraphs of at least {min_chars} characters under {root}/*/; {_INSTALL}")
    texts = [paragraph for name in names for paragraph in per_section[name]]
    labels = np.repeat(np.arange(len(names), dtype=np.int64), [len(per_section[name]) for name in names])
    return LabelledTexts(texts=texts, labels=labels, label_names=names, source="python-docs")
