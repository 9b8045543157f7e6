"""WordNet 3.0 noun or verb synsets (Debian ``wordnet-base``), each labelled with its lexicographer file (lexname)."""

from pathlib import Path
from typing import Literal

import numpy as np

from dictlab.data.corpora.labelled import CorpusError, LabelledTexts
from dictlab.data.corpora.locations import WORDNET

# The standard lexicographer file names, indexed by ``lex_filenum`` (WordNet's lexnames file, absent from Debian).
LEXNAMES: tuple[str, ...] = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)

_POS = {"noun": ("n", "wordnet-nouns"), "verb": ("v", "wordnet-verbs")}


def parse_synset_line(line: str, ss_type: str) -> tuple[int, str]:
    """``(lex_filenum, "lemma: definition")`` of one ``data.*`` line; raises :class:`ValueError` if malformed.

    The lemma is the synset's first word with underscores as spaces; the definition is the gloss (after ``" | "``)
    up to its first ``";"``.
    """
    head, sep, gloss = line.partition(" | ")
    if not sep:
        raise ValueError("no ' | ' before the gloss")
    fields = head.split()
    if len(fields) < 6:
        raise ValueError(f"{len(fields)} fields before the gloss, expected at least 6")
    offset, lex_filenum, found_type, w_cnt = fields[:4]
    if not (offset.isdigit() and len(offset) == 8):
        raise ValueError(f"synset offset {offset!r} is not 8 decimal digits")
    if not (lex_filenum.isdigit() and len(lex_filenum) == 2):
        raise ValueError(f"lex_filenum {lex_filenum!r} is not 2 decimal digits")
    if found_type != ss_type:
        raise ValueError(f"ss_type {found_type!r}, expected {ss_type!r}")
    try:
        n_words = int(w_cnt, 16)
    except ValueError:
        raise ValueError(f"w_cnt {w_cnt!r} is not hexadecimal") from None
    if n_words < 1 or len(fields) < 4 + 2 * n_words + 1:
        raise ValueError(f"w_cnt {w_cnt!r} ({n_words} words) does not fit the {len(fields)} fields")
    p_cnt = fields[4 + 2 * n_words]
    end = 5 + 2 * n_words + 4 * int(p_cnt) if p_cnt.isdigit() else -1
    if not 0 < end <= len(fields):
        raise ValueError(f"p_cnt {p_cnt!r} does not fit the {len(fields)} fields")
    frames = fields[end:]  # verbs only: f_cnt, then "+ f_num w_num" per frame
    expected = 1 + 3 * int(frames[0]) if ss_type == "v" and frames and frames[0].isdigit() else 0
    if len(frames) != expected or (ss_type == "v" and not frames):
        raise ValueError(f"{len(frames)} fields after the {p_cnt} pointers do not fit ss_type {ss_type!r}")
    definition = gloss.split(";", 1)[0].strip()
    if not definition:
        raise ValueError("empty definition")
    return int(lex_filenum), f"{fields[4].replace('_', ' ')}: {definition}"


def load_wordnet(pos: Literal["noun", "verb"] = "noun", root: Path | None = None) -> LabelledTexts:
    """One text per synset of ``root/data.{pos}``: ``"first lemma: definition"``, labelled with its lexname.

    ``label_names`` are the 26 noun (or 15 verb) lexnames in WordNet's index order. Licence header lines (two
    leading spaces) are skipped. Raises :class:`CorpusError` for a missing file or a malformed line (naming it).
    """
    if pos not in _POS:
        raise ValueError(f"pos must be 'noun' or 'verb', got {pos!r}")
    ss_type, source = _POS[pos]
    path = (WORDNET.find() if root is None else Path(root)) / f"data.{pos}"
    if not path.is_file():
        raise CorpusError(f"{path} not found; {WORDNET.install}")
    label_ids = [i for i, name in enumerate(LEXNAMES) if name.startswith(f"{pos}.")]
    reindex = {lex: i for i, lex in enumerate(label_ids)}
    texts: list[str] = []
    labels: list[int] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith("  ") or not line.strip():
                continue
            try:
                lex, text = parse_synset_line(line.rstrip("\r\n"), ss_type)
                if lex not in reindex:
                    raise ValueError(f"lex_filenum {lex:02d} is not a {pos} lexname")
            except ValueError as err:
                raise CorpusError(f"{path}, line {number}: malformed synset line: {err}") from None
            texts.append(text)
            labels.append(reindex[lex])
    if not texts:
        raise CorpusError(f"{path} holds no synsets; reinstall it with `apt-get install --reinstall wordnet-base`")
    return LabelledTexts(
        texts=texts,
        labels=np.array(labels, dtype=np.int64),
        label_names=[LEXNAMES[i] for i in label_ids],
        source=source,
    )
