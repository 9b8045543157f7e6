"""Labelled text corpora: parsers on small files, LabelledTexts helpers, load_corpus, and the real Debian data."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dictlab.data.corpora import (
    CORPORA,
    LEXNAMES,
    CorpusError,
    LabelledTexts,
    load_corpus,
    load_fortunes,
    load_python_docs,
    load_wordnet,
)
from dictlab.data.corpora.locations import FORTUNES, PYTHON_DOCS, WORDNET, CorpusLocation

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2   \n"
NOUNS = HEADER + "".join(
    [
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is"
        " perceived or known (living or nonliving)  \n",
        '02084071 05 n 02 dog 0 domestic_dog 0 001 @ 02083346 n 0000 | a member of the genus Canis ; "the dog"  \n',
        "07697100 13 n 0a hot_dog 0 red_hot 0 w3 0 w4 0 w5 0 w6 0 w7 0 w8 0 w9 0 w10 1 001 @ 07675627 n 0000"
        " | a frankfurter served hot on a bun  \n",
    ]
)
VERBS = HEADER + (
    "00001740 29 v 02 breathe 0 take_a_breath 0 001 * 00005041 v 0000 02 + 02 00 + 08 00 | draw air into, and"
    ' expel out of, the lungs; "I can breathe better"  \n'
)


def labelled(labels: list[int], names: list[str] | None = None) -> LabelledTexts:
    names = names or [f"c{i}" for i in range(max(labels) + 1)]
    return LabelledTexts([f"t{i}" for i in range(len(labels))], np.array(labels), names, source="test")


# --- WordNet -------------------------------------------------------------------------------------------------------


def test_wordnet_nouns_parse(tmp_path: Path) -> None:
    (tmp_path / "data.noun").write_text(NOUNS)
    data = load_wordnet("noun", root=tmp_path)
    assert data.texts == [
        "entity: that which is perceived or known (living or nonliving)",
        "dog: a member of the genus Canis",
        "hot dog: a frankfurter served hot on a bun",  # w_cnt 0a = 10 words, then the pointer block
    ]
    assert data.label_names == list(LEXNAMES[3:29]) and len(data.label_names) == 26
    assert [data.label_names[i] for i in data.labels] == ["noun.Tops", "noun.animal", "noun.food"]
    assert data.labels.dtype == np.int64 and data.source == "wordnet-nouns"


def test_wordnet_verbs_parse_frames(tmp_path: Path) -> None:
    (tmp_path / "data.verb").write_text(VERBS)
    data = load_wordnet("verb", root=tmp_path)
    assert data.texts == ["breathe: draw air into, and expel out of, the lungs"]
    assert data.label_names == list(LEXNAMES[29:44]) and data.label_names[data.labels[0]] == "verb.body"
    assert data.source == "wordnet-verbs"


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("02084071 05 n 0z dog 0 000 | a dog", "w_cnt '0z'"),
        ("02084071 05 n 03 dog 0 000 | a dog", "w_cnt '03'"),
        ("02084071 05 n 01 dog 0 002 @ 02083346 n 0000 | a dog", "p_cnt '002'"),
        ("02084071 05 n 01 dog 0 000 a dog without a gloss separator", "' | '"),
        ("02084071 30 n 01 dog 0 000 | a dog", "not a noun lexname"),
        ("02084071 05 v 01 dog 0 000 | a dog", "ss_type 'v'"),
    ],
)
def test_wordnet_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, reason: str) -> None:
    (tmp_path / "data.noun").write_text(NOUNS + bad_line + "\n")
    with pytest.raises(CorpusError, match="line 6") as err:
        load_wordnet("noun", root=tmp_path)
    assert str(tmp_path / "data.noun") in str(err.value) and reason in str(err.value)


def test_wordnet_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="apt-get install wordnet-base"):
        load_wordnet("verb", root=tmp_path)


# --- fortunes ------------------------------------------------------------------------------------------------------


def test_fortunes_parse(tmp_path: Path) -> None:
    (tmp_path / "zen").write_text("The way that can be told is not the eternal way.\n%\nshort\n%\n")
    (tmp_path / "animals").write_bytes(
        b"  A cat has nine lives, allegedly.  \n%\n\n%\nOne fish, two fish,\nred fish, blue \xff fish.\n"
    )
    (tmp_path / "animals.dat").write_bytes(b"\x00\x00\x00\x02 index data that is long enough")
    (tmp_path / "animals.u8").symlink_to("animals")
    (tmp_path / "link").symlink_to("zen")
    (tmp_path / "notes.txt").write_text("A file with an extension is not a category.\n")
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "rude").write_text("An offensive fortune that is long enough.\n")
    (tmp_path / "tiny").write_text("too short\n%\nalso short\n")
    data = load_fortunes(root=tmp_path)
    assert data.label_names == ["animals", "zen"]
    assert data.texts == [
        "A cat has nine lives, allegedly.",
        "One fish, two fish,\nred fish, blue \ufffd fish.",
        "The way that can be told is not the eternal way.",
    ]
    assert data.labels.tolist() == [0, 0, 1] and data.source == "fortunes"
    assert len(load_fortunes(root=tmp_path, min_chars=1)) == 6  # the short entries, tiny's included


def test_fortunes_missing(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="apt-get install fortunes fortunes-min"):
        load_fortunes(root=tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="apt-get install fortunes fortunes-min"):
        load_fortunes(root=tmp_path)  # exists, but holds no fortune files


# --- Python docs ---------------------------------------------------------------------------------------------------

PROSE = "This paragraph explains something in enough words to pass the eighty character minimum"
RST = f"""\
:mod:`os` --- Miscellaneous operating system interfaces
=========================================================

.. module:: os
   :synopsis: Miscellaneous operating system interfaces.

{PROSE}
and continues on
   an indented line.

* {PROSE} but is a bullet.

- {PROSE} but is a dash bullet.

:param x: {PROSE} but is a field.

======= {PROSE} as a table rule.

   .. note:: {PROSE} inside an indented directive.

Too short.

   {PROSE} as an indented block.
"""


def test_python_docs_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "os.rst.txt").write_text(RST)
    (tmp_path / "tutorial" / "deep").mkdir(parents=True)
    (tmp_path / "tutorial" / "deep" / "intro.rst.txt").write_text(f"Title\n\n{PROSE}.\n")
    (tmp_path / "tutorial" / "intro.rst").write_text(f"{PROSE}, not an .rst.txt file.\n")
    (tmp_path / "glossary.rst.txt").write_text(f"{PROSE}, at the root level.\n")
    data = load_python_docs(root=tmp_path)
    assert data.label_names == ["library", "tutorial"]
    assert data.texts == [f"{PROSE} and continues on an indented line.", f"{PROSE} as an indented block.", f"{PROSE}."]
    assert data.labels.tolist() == [0, 0, 1] and data.source == "python-docs"
    assert "Too short." in load_python_docs(root=tmp_path, min_chars=5).texts


def test_python_docs_missing(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=re.escape("apt-get install python3-doc")):
        load_python_docs(root=tmp_path / "nowhere")


# --- LabelledTexts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "labels", "names", "message"),
    [
        (["a", "b"], [0], ["x"], "2 texts but 1 labels"),
        (["a"], [1], ["x"], "out of range"),
        (["a"], [-1], ["x"], "out of range"),
        ([], [], ["x"], "no texts"),
        (["a"], [0], [], "no label names"),
        (["a"], [0], ["x", "x"], "duplicate"),
        (["a"], [0.0], ["x"], "integer"),
    ],
)
def test_labelled_texts_validation(texts: list[str], labels: list, names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabelledTexts(texts, np.array(labels), names, source="test")


def test_labelled_texts_basics() -> None:
    data = LabelledTexts(("a", "b", "c"), [2, 0, 2], ["x", "y", "z"], source="test")  # type: ignore[arg-type]
    assert len(data) == 3 and isinstance(data.texts, list) and data.labels.dtype == np.int64
    assert data.counts() == {"x": 1, "y": 0, "z": 2}
    picked = data.subset([2, 0])
    assert picked.texts == ["c", "a"] and picked.labels.tolist() == [2, 2] and picked.label_names == data.label_names
    assert data.subset(np.array([True, False, True])) == data.subset([0, 2])
    with pytest.raises(ValueError, match="no texts"):
        data.subset([])


def test_balanced_is_capped_deterministic_and_ordered() -> None:
    data = labelled([0] * 50 + [1] * 5 + [2] * 30)
    balanced = data.balanced(10, seed=3)
    assert balanced.counts() == {"c0": 10, "c1": 5, "c2": 10}
    positions = [int(text[1:]) for text in balanced.texts]
    assert positions == sorted(positions)
    assert balanced == data.balanced(10, seed=3)
    assert balanced != data.balanced(10, seed=4)
    assert data.balanced(100) == data
    with pytest.raises(ValueError, match="max_per_class"):
        data.balanced(0)


def test_split_is_stratified_deterministic_and_disjoint() -> None:
    data = labelled([0] * 60 + [1] * 30 + [2] * 10)
    train, test = data.split(0.2, seed=1)
    assert test.counts() == {"c0": 12, "c1": 6, "c2": 2}
    assert train.counts() == {"c0": 48, "c1": 24, "c2": 8}
    assert sorted(train.texts + test.texts, key=lambda t: int(t[1:])) == data.texts
    for side in (train, test):
        positions = [int(text[1:]) for text in side.texts]
        assert positions == sorted(positions)
    assert (train, test) == data.split(0.2, seed=1)
    assert test != data.split(0.2, seed=2)[1]
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(1.0)
    with pytest.raises(ValueError, match="no test"):
        labelled([0, 1]).split(0.1)


# --- load_corpus ---------------------------------------------------------------------------------------------------


def test_load_corpus_txt(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("first line\n\n   \n  second line  \n")
    data = load_corpus(str(path))
    assert data.texts == ["first line", "second line"] and data.label_names == ["text"]
    assert data.labels.tolist() == [0, 0] and data.source == str(path)


def test_load_corpus_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    records = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c", "label": "pos"}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    data = load_corpus(str(path))
    assert data.texts == ["a", "b", "c"] and data.label_names == ["neg", "pos"] and data.labels.tolist() == [1, 0, 1]

    unlabelled = tmp_path / "plain.jsonl"
    unlabelled.write_text('{"text": "x"}\n{"text": "y", "id": 2}\n')
    assert load_corpus(str(unlabelled)).label_names == ["text"]


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ('{"text": "b", ', "line 2 is not valid JSON"),
        ('["b"]', 'line 2: expected an object with a string "text"'),
        ('{"text": "b", "label": 3}', 'line 2: "label" must be a string'),
        ('{"text": "b"}', 'line 2: either every line or none has a "label"'),
    ],
)
def test_load_corpus_jsonl_errors(tmp_path: Path, second_line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n' + second_line + "\n")
    with pytest.raises(CorpusError, match=message) as err:
        load_corpus(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize("spec", ["wordnet-adjectives", "missing.txt", "corpus.csv"])
def test_load_corpus_unknown(tmp_path: Path, spec: str) -> None:
    (tmp_path / "corpus.csv").write_text("text\nhello\n")
    with pytest.raises(CorpusError) as err:
        load_corpus(str(tmp_path / spec) if "." in spec else spec)
    message = str(err.value)
    assert spec in message and all(name in message for name in CORPORA)


# --- the real Debian corpora (skipped only where the Debian package is not installed) ------------------------------


def found(location: CorpusLocation) -> Path:
    """The installed corpus folder, or a path that does not exist (so ``require`` skips)."""
    try:
        return location.find()
    except CorpusError:
        return Path("/nonexistent") / location.name


WORDNET_ROOT, FORTUNES_ROOT, PYTHON_DOCS_ROOT = found(WORDNET), found(FORTUNES), found(PYTHON_DOCS)


def require(path: Path, package: str) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent: install it with `apt-get install {package}`")


def test_real_wordnet_nouns() -> None:
    require(WORDNET_ROOT / "data.noun", "wordnet-base")
    data = load_wordnet("noun")
    assert len(data) == 82_115 and len(data.label_names) == 26
    assert all(n > 0 for n in data.counts().values())
    assert data.counts()["noun.Tops"] == 51
    dog = data.texts.index(
        "dog: a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man"
        " since prehistoric times"
    )
    assert data.label_names[data.labels[dog]] == "noun.animal"


def test_real_wordnet_verbs_via_registry() -> None:
    require(WORDNET_ROOT / "data.verb", "wordnet-base")
    data = load_corpus("wordnet-verbs")
    assert len(data) == 13_767 and len(data.label_names) == 15 and data.source == "wordnet-verbs"
    breathe = data.texts.index("breathe: draw air into, and expel out of, the lungs")
    assert data.label_names[data.labels[breathe]] == "verb.body"


def test_real_fortunes() -> None:
    require(FORTUNES_ROOT / "fortunes", "fortunes-min")
    require(FORTUNES_ROOT / "computers", "fortunes")
    data = load_fortunes()
    assert 40 <= len(data.label_names) <= 50  # 43 on Debian 12
    assert 13_000 <= len(data) <= 17_000  # 15,028 on Debian 12
    assert {"computers", "fortunes", "linux", "science", "startrek"} <= set(data.label_names)
    assert not any(name.endswith((".dat", ".u8")) for name in data.label_names)
    assert min(len(text) for text in data.texts) >= 20


def test_real_python_docs() -> None:
    require(PYTHON_DOCS_ROOT, "python3.11-doc")
    data = load_python_docs()
    counts = data.counts()
    assert 12 <= len(data.label_names) <= 16  # 14 sections on Debian 12
    assert 26_000 <= len(data) <= 31_000  # 28,606 paragraphs on Debian 12
    assert {"c-api", "library", "reference", "tutorial", "whatsnew"} <= set(counts)
    assert max(counts, key=counts.__getitem__) == "library"
    assert min(len(text) for text in data.texts) >= 80
    assert not any(text.startswith(("..", ":", "=", "-", "*")) for text in data.texts)
