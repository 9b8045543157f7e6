"""Offline labelled text corpora (WordNet, fortunes, Python docs, user files) as :class:`LabelledTexts`."""

from dictlab.data.corpora.fortunes import load_fortunes
from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.data.corpora.python_docs import load_python_docs
from dictlab.data.corpora.registry import CORPORA, load_corpus
from dictlab.data.corpora.text_files import load_jsonl, load_text_lines
from dictlab.data.corpora.wordnet import LEXNAMES, load_wordnet

__all__ = [
    "CORPORA",
    "LEXNAMES",
    "CorpusError",
    "LabelledTexts",
    "load_corpus",
    "load_fortunes",
    "load_jsonl",
    "load_python_docs",
    "load_text_lines",
    "load_wordnet",
]
