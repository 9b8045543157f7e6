"""First-letter feature absorption (Chanin et al., arXiv 2409.14507 "A is for Absorption"), as SAEBench's
``absorption_first_letter`` eval (``adamkarvonen/SAEBench`` 0.6.0, ``sae_bench/evals/absorption/``).

The model sees in-context prompts ``"{word} has the first letter: X"`` (:mod:`.prompts`); a one-vs-rest
logistic-regression probe reads the word's first letter from the activation at the word token (:mod:`.probe`);
k-sparse probing finds each letter's main SAE latents; a test word the probe puts in its letter is absorbed when the
main latents fail to fire and other latents, aligned with the probe, carry its projection (:mod:`.calculator`).

Two steps: :func:`first_letter_data` runs the language model and fits the probe (no SAE involved; ``dictlab
evaluate`` computes it once for every SAE of a model module) and :func:`first_letter_absorption` scores one SAE.

Where dictlab differs from SAEBench, beyond :mod:`.words` and :mod:`.probe`: the vocabulary is a word list
(Debian's ``/usr/share/dict/american-english``: lowercase alphabetic words that are one token with a leading space)
rather than every alphabetic token of the tokenizer, and at most ``words`` of them are sampled — SAEBench uses the
whole token vocabulary (tens of thousands of prompts), which costs minutes of GPU time per model.
"""

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

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

EVAL_TYPE_ID = "absorption_first_letter"
"""SAEBench's eval_type_id of this evaluation."""
LETTERS = "abcdefghijklmnopqrstuvwxyz"
DEFAULT_WORD_LIST = Path("/usr/share/dict/american-english")
FIRST_LETTER_TEMPLATE = "{word} has the first letter:"
"""SAEBench's ``prompt_template``."""


class FirstLetterOptions(WordDataOptions):
    """The words, prompts and probe of first-letter absorption (the SAE-independent part)."""

    word_list: Path = Field(
        default=DEFAULT_WORD_LIST,
        description="Word list, one word a line (Debian package wamerican); lowercase alphabetic words that are one "
        "token with a leading space are used.",
    )
    template: str = Field(default=FIRST_LETTER_TEMPLATE, description="Prompt template with {word} (SAEBench's).")


class FirstLetterAbsorptionOptions(AbsorptionOptions):
    """SAEBench's absorption settings (k-sparse probing, thresholds)."""


FirstLetterData = WordClassData
"""The SAE-independent part of first-letter absorption (see :class:`.words.WordClassData`)."""


def first_letter_answer(word: str) -> str:
    """SAEBench's ``first_letter_formatter``: a space and the capitalised first letter (``"cat"`` → ``" C"``)."""
    return " " + word[0].upper()


def first_letter_vocabulary(tokenizer: Any, word_list: Path) -> list[tuple[str, int]]:
    """(word, letter index) for the lowercase alphabetic words of ``word_list`` that are one token with a leading
    space (SAEBench's ``get_alpha_tokens`` filter applied to a word list), deduplicated, in file order."""
    if not word_list.is_file():
        raise FileNotFoundError(
            f"word list {word_list} not found: install it (`apt-get install wamerican`) or pass another list"
        )
    words = list(dict.fromkeys(w.strip() for w in word_list.read_text(encoding="utf-8", errors="replace").splitlines()))
    words = [w for w in words if re.fullmatch(r"[a-z]+", w)]
    single = single_token_words(tokenizer, words)
    if not single:
        raise ValueError(f"{word_list}: no lowercase alphabetic word is a single token of this tokenizer")
    return [(w, LETTERS.index(w[0])) for w in single]


def first_letter_data(
    language_model: LanguageModel, module: str, options: FirstLetterOptions | None = None, progress: bool = False
) -> FirstLetterData:
    """Prompts, word-token activations of ``module`` and the first-letter probe (independent of any SAE)."""
    options = options or FirstLetterOptions()
    vocabulary = first_letter_vocabulary(language_model.tokenizer, options.word_list)
    return build_word_class_data(
        language_model,
        module,
        "first_letter",
        vocabulary,
        list(LETTERS),
        options.template,
        first_letter_answer,
        options,
        progress,
    )


class FirstLetterAbsorptionResult(BaseModel):
    """First-letter absorption of one SAE, with the probe's own quality."""

    model: str
    module: str
    n_words: int
    probe: ProbeReport = Field(description="The first-letter probe on held-out words: how well the model spells.")
    letters: list[ClassAbsorption] = Field(description="Letters whose probe F1 passes min_probe_f1.")
    means: AbsorptionMeans
    n_letters_counted: int
    enough_classes: bool = Field(description="At least min_classes letters counted (SAEBench refuses otherwise).")
    pairs: list[AbsorptionPair] = Field(description="Label-based (absorbing latent, main latent) pairs.")
    agreement: AbsorptionAgreement | None = Field(
        default=None, description="Agreement with the label-free hierarchy flags, when computed (agreement.py)."
    )
    options: dict[str, Any]
    seconds: float = Field(description="SAE-dependent part only (the model and probe are timed in their data).")

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        """SAEBench's ``eval_result_metrics``: category ``mean``."""
        return {"mean": self.means.model_dump()}

    def saebench_details(self) -> list[dict[str, Any]]:
        """SAEBench's ``eval_result_details``: one ``AbsorptionResultDetail`` per counted letter."""
        return class_details(self.letters, "first_letter")


def first_letter_absorption(
    dictionary: SparseDictionary,
    data: WordClassData,
    options: FirstLetterAbsorptionOptions | None = None,
    progress: bool = False,
) -> FirstLetterAbsorptionResult:
    """First-letter absorption of ``dictionary`` on ``data`` (from :func:`first_letter_data`)."""
    options = options or FirstLetterAbsorptionOptions()
    if data.task != "first_letter":
        raise ValueError(f"first_letter_absorption needs first-letter data, got {data.task!r} data")
    run = class_absorption(dictionary, data, options, progress)
    counted = sum(1 for c in run.classes if c.num_probe_true_positives)
    return FirstLetterAbsorptionResult(
        model=data.model,
        module=data.module,
        n_words=len(data.words),
        probe=data.probe_report,
        letters=run.classes,
        means=run.means,
        n_letters_counted=counted,
        enough_classes=counted >= options.min_classes,
        pairs=run.pairs,
        options=options.model_dump(mode="json"),
        seconds=run.seconds,
    )
