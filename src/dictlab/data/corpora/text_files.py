"""User text corpora: ``.txt`` (one text per line, unlabelled) and ``.jsonl`` (``{"text": ..., "label": ...}``)."""

from pathlib import Path

import numpy as np

from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.files.json_files import parse_json

UNLABELLED = "text"  # the single label name of an unlabelled corpus


def _read(path: Path) -> str:
    if not path.is_file():
        raise CorpusError(f"{path} does not exist or is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CorpusError(f"{path} cannot be read as UTF-8 text: {err}") from err


def load_text_lines(path: str | Path) -> LabelledTexts:
    """One text per non-empty line of a UTF-8 ``.txt`` file (stripped), all with the single label ``"text"``."""
    path = Path(path)
    texts = [line.strip() for line in _read(path).splitlines() if line.strip()]
    if not texts:
        raise CorpusError(f"{path} holds no non-empty lines")
    return LabelledTexts(texts=texts, labels=np.zeros(len(texts), np.int64), label_names=[UNLABELLED], source=str(path))


def load_jsonl(path: str | Path) -> LabelledTexts:
    """One text per non-empty line of a ``.jsonl`` file: an object with a string ``"text"`` and optional ``"label"``.

    Either every object has a string ``"label"`` (``label_names`` are the distinct labels, sorted) or none has
    (the single label ``"text"``). Raises :class:`CorpusError` naming the file and line for a bad line.
    """
    path = Path(path)
    texts: list[str] = []
    raw_labels: list[str | None] = []
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        record = parse_json(line, where, CorpusError)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CorpusError(f'{where}: expected an object with a string "text", got {line.strip()[:80]!r}')
        label = record.get("label")
        if label is not None and not isinstance(label, str):
            raise CorpusError(f'{where}: "label" must be a string, got {label!r}')
        if raw_labels and (label is None) != (raw_labels[0] is None):
            raise CorpusError(f'{where}: either every line or none has a "label"; this line differs from the first')
        texts.append(record["text"])
        raw_labels.append(label)
    if not texts:
        raise CorpusError(f"{path} holds no JSON lines")
    if raw_labels[0] is None:
        return LabelledTexts(texts, np.zeros(len(texts), np.int64), [UNLABELLED], source=str(path))
    present = [label for label in raw_labels if label is not None]  # every line has one (checked above)
    names = sorted(set(present))
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[label] for label in present], dtype=np.int64)
    return LabelledTexts(texts=texts, labels=labels, label_names=names, source=str(path))
