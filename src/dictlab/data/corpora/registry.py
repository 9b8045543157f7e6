"""Load a labelled text corpus by name (the offline Debian corpora) or by path (``.txt`` / ``.jsonl``)."""

from collections.abc import Callable
from pathlib import Path

from dictlab.data.corpora.fortunes import load_fortunes
from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.data.corpora.python_docs import load_python_docs
from dictlab.data.corpora.text_files import load_jsonl, load_text_lines
from dictlab.data.corpora.wordnet import load_wordnet

CORPORA: dict[str, str] = {
    "wordnet-nouns": "WordNet noun synsets as 'lemma: definition', 26 lexname classes (apt-get install wordnet-base)",
    "wordnet-verbs": "WordNet verb synsets as 'lemma: definition', 15 lexname classes (apt-get install wordnet-base)",
    "fortunes": "fortune cookies labelled by category file (apt-get install fortunes fortunes-min)",
    "python-docs": "Python documentation paragraphs labelled by section (apt-get install python3-doc)",
}

_LOADERS: dict[str, Callable[[], LabelledTexts]] = {
    "wordnet-nouns": lambda: load_wordnet("noun"),
    "wordnet-verbs": lambda: load_wordnet("verb"),
    "fortunes": load_fortunes,
    "python-docs": load_python_docs,
}

_FILE_LOADERS: dict[str, Callable[[Path], LabelledTexts]] = {".txt": load_text_lines, ".jsonl": load_jsonl}


def load_corpus(spec: str) -> LabelledTexts:
    """The corpus named ``spec`` (a key of :data:`CORPORA`), or the ``.txt`` / ``.jsonl`` file at path ``spec``.

    Raises :class:`CorpusError` for anything else, naming ``spec`` and listing the known names.
    """
    if spec in _LOADERS:
        return _LOADERS[spec]()
    path = Path(spec)
    loader = _FILE_LOADERS.get(path.suffix.lower())
    if loader is None or not path.is_file():
        reason = "no such file" if loader is not None else f"not a file path ending in {' or '.join(_FILE_LOADERS)}"
        raise CorpusError(f"unknown corpus {spec!r} ({reason}); known corpora: {', '.join(CORPORA)}")
    return loader(path)
