"""Corpus folders are found (an environment variable, then the standard install locations), never assumed."""

from pathlib import Path

import pytest

from dictlab.data.corpora import CorpusError, load_corpus
from dictlab.data.corpora.locations import FORTUNES, PYTHON_DOCS, WORDNET, CorpusLocation


def test_environment_variable_names_the_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "fortunes").write_text("A first fortune that is long enough.\n%\nA second one, also long enough.\n")
    (tmp_path / "science").write_text("Science: the belief in the ignorance of experts.\n")
    monkeypatch.setenv(FORTUNES.env_var, str(tmp_path))
    corpus = load_corpus("fortunes")
    assert corpus.label_names == ["fortunes", "science"] and len(corpus.texts) == 3


def test_environment_variable_without_the_corpus_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(WORDNET.env_var, str(tmp_path))
    with pytest.raises(CorpusError, match=f"{WORDNET.env_var}=.* does not hold the WordNet corpus"):
        load_corpus("wordnet-nouns")


def test_newest_standard_location_wins_and_a_miss_names_every_place(tmp_path: Path, monkeypatch) -> None:
    for version in ("python3.9", "python3.12", "python3.11"):
        (tmp_path / version / "html" / "_sources" / "library").mkdir(parents=True)
    location = CorpusLocation(
        name="docs", env_var="DICTLAB_TEST_DOCS", candidates=(str(tmp_path / "python3*" / "html" / "_sources"),),
        marker="library", install="install them",
    )  # fmt: skip
    monkeypatch.delenv("DICTLAB_TEST_DOCS", raising=False)
    assert location.find() == tmp_path / "python3.12" / "html" / "_sources"
    empty = CorpusLocation("docs", "DICTLAB_TEST_DOCS", (str(tmp_path / "nowhere" / "*"),), "library", "install them")
    with pytest.raises(CorpusError, match=r"not found in .*nowhere.*; install them, or set DICTLAB_TEST_DOCS"):
        empty.find()


def test_the_installed_corpora_are_found() -> None:
    for location in (WORDNET, FORTUNES, PYTHON_DOCS):
        try:
            folder = location.find()
        except CorpusError:
            pytest.skip(f"{location.name} is not installed here")
        assert (folder / location.marker).exists()
