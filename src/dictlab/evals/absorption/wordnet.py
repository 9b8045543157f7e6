"""Absorption in a semantic hierarchy: WordNet lexnames as the parent features, their lemmas as the children.

The first-letter construction (:mod:`.first_letter`) with the letter replaced by the lemma's lexicographer file
(``noun.animal``, ``noun.artifact``, …): prompts ``"{word} belongs to the category: animal"``, a one-vs-rest
logistic-regression probe per lexname at the word token, k-sparse probing for each lexname's main latents and the
same absorption criterion. A lemma's lexname is that of its most frequent sense (the first synset WordNet's
``index.noun`` lists); lemmas are the lowercase alphabetic nouns that are one token with a leading space. This eval
is dictlab's own (SAEBench has no hierarchy version); its results use the first-letter eval's metric names.

The WordNet files are Debian's ``wordnet-base`` (read with :mod:`dictlab.data.corpora.wordnet`).
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dictlab.data.corpora.labelled import CorpusError
from dictlab.data.corpora.locations import WORDNET
from dictlab.data.corpora.wordnet import LEXNAMES, parse_synset_line
from dictlab.evals.absorption.agreement import AbsorptionAgreement
from dictlab.evals.absorption.probe import ProbeReport
from dictlab.evals.absorption.prompts import single_token_words
from dictlab.evals.absorption.words import (
    AbsorptionMeans,
    AbsorptionOptions,
    AbsorptionPair,
    ClassAbsorption,
    WordClassData,
    WordDataOptions,
    build_word_class_data,
    class_absorption,
    class_details,
)
from dictlab.lm.loading import LanguageModel
from dictlab.models.dictionary import SparseDictionary

EVAL_TYPE_ID = "absorption_wordnet"
"""dictlab's eval type id (not an SAEBench eval)."""
WORDNET_TEMPLATE = "{word} belongs to the category:"
NOUN_LEXNAMES = [name for name in LEXNAMES if name.startswith("noun.")]


class WordNetOptions(WordDataOptions):
    """The lemmas, prompts and lexname probe (the SAE-independent part)."""

    wordnet_dir: Path | None = Field(
        default=None, description="WordNet folder with index.noun and data.noun (default: found like the corpus)."
    )
    template: str = Field(default=WORDNET_TEMPLATE, description="Prompt template with {word}.")


class WordNetAbsorptionOptions(AbsorptionOptions):
    """The absorption settings (SAEBench's thresholds; lexnames are fewer than letters, so fewer must pass)."""

    min_classes: int = Field(default=10, ge=1, description="Fewer passing lexnames sets enough_classes false.")


def lexname_answer(lexname: str) -> str:
    """``"noun.animal"`` → ``" animal"``."""
    return " " + lexname.split(".", 1)[1].lower()


def noun_lexnames(root: Path | None = None) -> dict[str, str]:
    """Lemma → lexname of its most frequent sense, for the one-word lowercase alphabetic nouns of WordNet.

    Reads ``index.noun`` (a lemma's synsets, most frequent first) and the first synset's line in ``data.noun``
    (synset offsets are byte offsets). Raises :class:`CorpusError` naming a missing or malformed file.
    """
    folder = WORDNET.find() if root is None else Path(root)
    index, data = folder / "index.noun", folder / "data.noun"
    for path in (index, data):
        if not path.is_file():
            raise CorpusError(f"{path} not found; {WORDNET.install}")
    firsts: dict[str, int] = {}
    with index.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith("  ") or not line.strip():
                continue
            fields = line.split()
            try:
                n_synsets, n_pointers = int(fields[2]), int(fields[3])
                offsets = fields[6 + n_pointers :]
                if len(offsets) != n_synsets or not offsets[0].isdigit():
                    raise ValueError(f"{len(offsets)} synset offsets, expected {n_synsets}")
            except (IndexError, ValueError) as err:
                raise CorpusError(f"{index}, line {number}: malformed index line: {err}") from None
            lemma = fields[0]
            if lemma.isalpha() and lemma.islower() and lemma.isascii():
                firsts[lemma] = int(offsets[0])
    out: dict[str, str] = {}
    with data.open("rb") as handle:
        for lemma, offset in firsts.items():
            handle.seek(offset)
            line = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                lex, _ = parse_synset_line(line, "n")
            except ValueError as err:
                raise CorpusError(f"{data}, offset {offset} (first sense of {lemma!r}): {err}") from None
            out[lemma] = LEXNAMES[lex]
    return out


def wordnet_vocabulary(tokenizer: Any, root: Path | None = None) -> list[tuple[str, int]]:
    """(lemma, noun-lexname index) for the single-token (with a leading space) nouns, in alphabetical order."""
    lexnames = noun_lexnames(root)
    words = single_token_words(tokenizer, sorted(lexnames))
    return [(w, NOUN_LEXNAMES.index(lexnames[w])) for w in words]


def wordnet_data(
    language_model: LanguageModel, module: str, options: WordNetOptions | None = None, progress: bool = False
) -> WordClassData:
    """Prompts, lemma-token activations of ``module`` and the lexname probe (independent of any SAE)."""
    options = options or WordNetOptions()
    vocabulary = wordnet_vocabulary(language_model.tokenizer, options.wordnet_dir)
    lexname_of = dict(vocabulary)
    return build_word_class_data(
        language_model,
        module,
        "wordnet_lexname",
        vocabulary,
        NOUN_LEXNAMES,
        options.template,
        lambda w: lexname_answer(NOUN_LEXNAMES[lexname_of[w]]),
        options,
        progress,
    )


class WordNetAbsorptionResult(BaseModel):
    """Lexname absorption of one SAE, with the lexname probe's own quality."""

    model: str
    module: str
    n_words: int
    probe: ProbeReport
    lexnames: list[ClassAbsorption]
    means: AbsorptionMeans
    n_lexnames_counted: int
    enough_classes: bool
    pairs: list[AbsorptionPair]
    agreement: AbsorptionAgreement | None = Field(
        default=None, description="Agreement with the label-free hierarchy flags, when computed (agreement.py)."
    )
    options: dict[str, Any]
    seconds: float

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        """The first-letter eval's layout (category ``mean``) for this dictlab-only eval."""
        return {"mean": self.means.model_dump()}

    def saebench_details(self) -> list[dict[str, Any]]:
        return class_details(self.lexnames, "lexname")


def wordnet_absorption(
    dictionary: SparseDictionary,
    data: WordClassData,
    options: WordNetAbsorptionOptions | None = None,
    progress: bool = False,
) -> WordNetAbsorptionResult:
    """Lexname absorption of ``dictionary`` on ``data`` (from :func:`wordnet_data`)."""
    options = options or WordNetAbsorptionOptions()
    if data.task != "wordnet_lexname":
        raise ValueError(f"wordnet_absorption needs WordNet data, got {data.task!r} data")
    run = class_absorption(dictionary, data, options, progress)
    counted = sum(1 for c in run.classes if c.num_probe_true_positives)
    return WordNetAbsorptionResult(
        model=data.model,
        module=data.module,
        n_words=len(data.words),
        probe=data.probe_report,
        lexnames=run.classes,
        means=run.means,
        n_lexnames_counted=counted,
        enough_classes=counted >= options.min_classes,
        pairs=run.pairs,
        options=options.model_dump(mode="json"),
        seconds=run.seconds,
    )
