"""The machinery shared by first-letter and WordNet absorption: words of known classes in prompts, the model's
activations at their token and a class probe (SAE-independent, computed once per model and module), then for an
SAE the k-sparse probes, the absorption criterion on the probe's true positives and the per-class aggregates.

Aggregates follow SAEBench (``adamkarvonen/SAEBench`` 0.6.0, ``sae_bench/evals/absorption/main.py``,
``_aggregate_results_df``): for a class, the words counted are the test words of the class the probe calls
positive (``num_probe_true_positives``); ``mean_absorption_fraction`` = Σ absorption fraction / that count,
``full_absorption_rate`` = full-absorption words / that count, ``num_split_features`` = the number of main latents.
Only classes whose probe F1 exceeds ``min_probe_f1`` count; the headline numbers are the mean and the standard
deviation (``statistics.stdev``) over those classes.

Where dictlab differs: SAEBench builds a second prompt for each true positive (fresh in-context examples from the
whole vocabulary) to measure absorption; dictlab reuses the test prompt the probe classified, so the criterion's
"the probe classifies correctly" holds for the very activation measured, and the model runs once per word for all
SAEs. SAEBench stops when fewer than ``min_feats_for_eval`` = 20 letters pass; dictlab still reports the numbers
over the classes that pass and sets ``enough_classes`` to false (a small model with few words may not reach 20).
"""

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.evals.absorption.calculator import CriterionOptions, absorption_verdicts
from dictlab.evals.absorption.probe import LinearProbe, ProbeReport, fit_probe, k_sparse_probes, probe_report
from dictlab.evals.absorption.prompts import WordPrompt, icl_prompt, word_activations
from dictlab.lm.loading import LanguageModel
from dictlab.models.dictionary import SparseDictionary
from dictlab.stopwatch import Stopwatch


class WordDataOptions(BaseModel):
    """How the words, prompts and probe are chosen (the SAE-independent part)."""

    words: int = Field(default=2000, gt=0, description="Words (at most), sampled from the vocabulary with the seed.")
    train_fraction: float = Field(
        default=0.8, gt=0, lt=1, description="Share of the words the probe trains on (SAEBench: 0.8); the rest test."
    )
    max_icl_examples: int = Field(default=10, ge=0, description="In-context examples per prompt (SAEBench: 10).")
    min_words_per_class: int = Field(
        default=10, ge=2, description="Classes with fewer sampled words are left out (probe and absorption)."
    )
    probe_C: float = Field(default=1.0, gt=0, description="Inverse L2 strength of the logistic-regression probe.")
    batch_size: int = Field(default=32, gt=0, description="Prompts per forward pass.")
    seed: int = Field(default=0, description="Seed of the word sample, the split and the in-context examples.")


@dataclass(frozen=True)
class WordClassData:
    """The SAE-independent part of a label-based absorption eval (reusable for every SAE of one model module)."""

    task: str
    model: str
    module: str
    template: str
    class_names: list[str]
    words: list[str]
    labels: Tensor
    """[n] class index of each word."""
    train: Tensor
    """[n] bool: the probe's train words (the rest are its test words)."""
    prompts: list[str]
    positions: Tensor
    """[n] index of the token read (the word's) from the prompt's first token."""
    token_ids: Tensor
    """[n] the token read."""
    activations: Tensor
    """[n, d] the module's output at the word token (raw activations)."""
    probe: LinearProbe
    probe_report: ProbeReport
    seconds: float


def build_word_class_data(
    lm: LanguageModel,
    module: str,
    task: str,
    vocabulary: Sequence[tuple[str, int]],
    class_names: Sequence[str],
    template: str,
    answer: Callable[[str], str],
    options: WordDataOptions,
    progress: bool = False,
) -> WordClassData:
    """Sample words of ``vocabulary`` ((word, class) pairs), prompt them, read ``module`` at the word token, split
    and fit the probe. Classes with fewer than ``min_words_per_class`` sampled words are dropped."""
    clock = Stopwatch()
    rng = random.Random(options.seed)
    sample = rng.sample(list(vocabulary), min(options.words, len(vocabulary)))
    counts = [sum(1 for _, c in sample if c == k) for k in range(len(class_names))]
    kept = [k for k, n in enumerate(counts) if n >= options.min_words_per_class]
    if len(kept) < 2:
        raise ValueError(
            f"{task}: only {len(kept)} class(es) have {options.min_words_per_class}+ of the {len(sample)} sampled "
            "words; sample more words or lower min_words_per_class"
        )
    reindex = {k: i for i, k in enumerate(kept)}
    sample = [(w, reindex[c]) for w, c in sample if c in reindex]
    # The split is per class (each class keeps >= 1 train and >= 1 test word); SAEBench splits the whole vocabulary
    # at random, which is the same in expectation and can leave a rare class out of a split.
    train_words, test_words = [], []
    for k in range(len(kept)):
        members = [w for w, c in sample if c == k]
        cut = min(max(round(len(members) * options.train_fraction), 1), len(members) - 1)
        train_words += members[:cut]
        test_words += members[cut:]
    label_of = dict(sample)
    sample = [(w, label_of[w]) for w in train_words + test_words]
    n_train = len(train_words)
    prompts: list[WordPrompt] = []
    for words in (train_words, test_words):  # SAEBench: each split's prompts draw examples from that split only
        prompts.extend(icl_prompt(w, words, template, answer, rng, options.max_icl_examples) for w in words)
    acts, positions, token_ids = word_activations(lm, module, prompts, options.batch_size, progress)
    labels = torch.tensor([c for _, c in sample], dtype=torch.long)
    train = torch.arange(len(sample)) < n_train
    names = [class_names[k] for k in kept]
    probe = fit_probe(acts[train], labels[train], len(names), options.probe_C, options.seed)
    return WordClassData(
        task=task,
        model=lm.name,
        module=module,
        template=template,
        class_names=names,
        words=[w for w, _ in sample],
        labels=labels,
        train=train,
        prompts=[p.text for p in prompts],
        positions=positions,
        token_ids=token_ids,
        activations=acts,
        probe=probe,
        probe_report=probe_report(probe, acts, labels, train, names),
        seconds=clock.total,
    )


class AbsorptionOptions(CriterionOptions):
    """The SAE-dependent part: k-sparse probing, SAEBench's thresholds and which classes count."""

    max_k: int = Field(default=10, ge=1, description="Largest k of the k-sparse probes (SAEBench: 10).")
    l1_decay: float = Field(
        default=0.01, gt=0, description="L1 strength of the probe that ranks latents (SAEBench: 0.01)."
    )
    f1_jump_threshold: float = Field(
        default=0.03, ge=0, description="k grows while the k-sparse F1 rises by more than this (SAEBench: 0.03)."
    )
    min_probe_f1: float = Field(
        default=0.6, ge=0, le=1, description="Only classes whose probe F1 exceeds this count (SAEBench: 0.6)."
    )
    min_classes: int = Field(
        default=20, ge=1, description="Fewer passing classes than this sets enough_classes false (SAEBench: 20)."
    )
    batch_size: int = Field(default=4096, gt=0, description="Rows per SAE encoding batch.")
    max_listed_words: int = Field(default=20, ge=0, description="Absorbed words listed per class in the result.")
    seed: int = Field(default=0, description="Seed of the probe fits.")


class AbsorbedWord(BaseModel):
    """A probe-positive word with absorption."""

    word: str
    absorption_fraction: float
    full_absorption: bool
    absorbing_latents: list[int] = Field(description="The latents counted in the fraction, plus the top one if full.")
    top_latent: int
    top_latent_share: float = Field(description="The top latent's share π_k/π of the probe projection.")


class ClassAbsorption(BaseModel):
    """One class (a letter, a lexname)."""

    name: str
    probe_f1: float
    main_latents: list[int]
    k_sparse_f1: list[float] = Field(description="Test F1 of the k-sparse probe for k = 1 … max_k.")
    num_split_features: int = Field(description="len(main_latents), as SAEBench reports it.")
    num_probe_true_positives: int
    num_full_absorption: int
    full_absorption_rate: float
    mean_absorption_fraction: float
    absorbed_words: list[AbsorbedWord] = Field(description="Words with absorption (at most max_listed_words).")
    n_absorbed_words: int


class AbsorptionPair(BaseModel):
    """Label-based absorption pair: latent ``absorbing`` takes the class direction where the class's main latents are
    silent or short; ``main`` is the first of them (the k-sparse probe's top latent)."""

    absorbing: int
    main: int
    class_name: str
    words: int = Field(description="Words of the class with this absorbing latent.")
    full_words: int = Field(description="Of them, words with full absorption.")


class AbsorptionMeans(BaseModel):
    """Mean and standard deviation over the counted classes (None with fewer than 1 / 2 classes)."""

    mean_absorption_fraction_score: float | None
    mean_full_absorption_score: float | None
    mean_num_split_features: float | None
    std_dev_absorption_fraction_score: float | None
    std_dev_full_absorption_score: float | None
    std_dev_num_split_features: float | None


@dataclass(frozen=True)
class ClassAbsorptionRun:
    """Everything the SAE-dependent part computes."""

    classes: list[ClassAbsorption]
    pairs: list[AbsorptionPair]
    means: AbsorptionMeans
    seconds: float


def encode_rows(dictionary: SparseDictionary, x: Tensor, batch_size: int) -> Tensor:
    """SAE codes of x [n, d_in]: [n, d_sae] float32."""
    dictionary.eval()
    param = dictionary.W_enc
    with torch.no_grad():
        parts = [
            dictionary.encode(x[lo : lo + batch_size].to(param.device, param.dtype)).float().cpu()
            for lo in range(0, len(x), batch_size)
        ]
    return torch.cat(parts)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def class_absorption(
    dictionary: SparseDictionary, data: WordClassData, options: AbsorptionOptions, progress: bool = False
) -> ClassAbsorptionRun:
    """k-sparse probes, the criterion and the aggregates for one SAE on ``data`` (see the module docstring)."""
    del progress  # every step is a few seconds at most
    clock = Stopwatch()
    cfg = dictionary.cfg
    if cfg.d_in != data.activations.shape[1]:
        raise ValueError(
            f"the SAE reads d_in = {cfg.d_in} but the {data.task} activations of {data.module} have width "
            f"{data.activations.shape[1]}: the SAE belongs to another model or module"
        )
    codes = encode_rows(dictionary, data.activations, options.batch_size)
    train, test = data.train, ~data.train
    probes = k_sparse_probes(
        codes[train],
        data.labels[train],
        codes[test],
        data.labels[test],
        len(data.class_names),
        options.max_k,
        options.l1_decay,
        options.f1_jump_threshold,
        options.seed,
    )
    weight, _ = data.probe.tensors()
    logits = data.probe.logits(data.activations)
    decoder = dictionary.W_dec.detach().double().cpu()
    test_ids = test.nonzero().flatten()
    classes: list[ClassAbsorption] = []
    pairs: dict[tuple[int, int], AbsorptionPair] = {}
    for c, name in enumerate(data.class_names):
        f1 = data.probe_report.classes[c].f1
        if f1 <= options.min_probe_f1:
            continue
        main = probes[c].main_latents
        rows = test_ids[(data.labels[test_ids] == c) & (logits[test_ids, c] > 0)]
        verdicts = absorption_verdicts(data.activations[rows], codes[rows], weight[c], decoder, main, options)
        listed: list[AbsorbedWord] = []
        n_absorbed = 0
        for row, v in zip(rows.tolist(), verdicts, strict=True):
            absorbing = list(v.absorbers)
            if v.full_absorption and v.top_latents[0] not in absorbing:
                absorbing.append(v.top_latents[0])
            if not absorbing:
                continue
            n_absorbed += 1
            if len(listed) < options.max_listed_words:
                listed.append(
                    AbsorbedWord(
                        word=data.words[row],
                        absorption_fraction=v.absorption_fraction,
                        full_absorption=v.full_absorption,
                        absorbing_latents=absorbing,
                        top_latent=v.top_latents[0],
                        top_latent_share=v.top_projections[0] / v.probe_projection if v.probe_projection else 0.0,
                    )
                )
            # The pair is (absorber, the class's top latent): the other main latents are the class's split
            # features, and pairing with them too would count the split itself as absorption.
            for a in absorbing:
                if a == main[0]:
                    continue
                pair = pairs.setdefault(
                    (a, main[0]), AbsorptionPair(absorbing=a, main=main[0], class_name=name, words=0, full_words=0)
                )
                pair.words += 1
                pair.full_words += int(v.full_absorption)
        n = len(verdicts)
        n_full = sum(v.full_absorption for v in verdicts)
        classes.append(
            ClassAbsorption(
                name=name,
                probe_f1=f1,
                main_latents=main,
                k_sparse_f1=probes[c].f1,
                num_split_features=len(main),
                num_probe_true_positives=n,
                num_full_absorption=n_full,
                full_absorption_rate=n_full / n if n else 0.0,
                mean_absorption_fraction=sum(v.absorption_fraction for v in verdicts) / n if n else 0.0,
                absorbed_words=listed,
                n_absorbed_words=n_absorbed,
            )
        )
    counted = [c for c in classes if c.num_probe_true_positives]  # SAEBench's table has no row for the others
    frac = _mean_std([c.mean_absorption_fraction for c in counted])
    full = _mean_std([c.full_absorption_rate for c in counted])
    split = _mean_std([float(c.num_split_features) for c in counted])
    means = AbsorptionMeans(
        mean_absorption_fraction_score=frac[0],
        mean_full_absorption_score=full[0],
        mean_num_split_features=split[0],
        std_dev_absorption_fraction_score=frac[1],
        std_dev_full_absorption_score=full[1],
        std_dev_num_split_features=split[1],
    )
    ordered = sorted(pairs.values(), key=lambda p: (-p.words, p.absorbing, p.main))
    return ClassAbsorptionRun(classes=classes, pairs=ordered, means=means, seconds=clock.total)


def class_details(classes: list[ClassAbsorption], name_key: str) -> list[dict[str, Any]]:
    """SAEBench's per-class ``AbsorptionResultDetail`` rows (class name under ``name_key``) for the counted classes."""
    return [
        {
            name_key: c.name,
            "mean_absorption_fraction": c.mean_absorption_fraction,
            "full_absorption_rate": c.full_absorption_rate,
            "num_full_absorption": c.num_full_absorption,
            "num_probe_true_positives": c.num_probe_true_positives,
            "num_split_features": c.num_split_features,
        }
        for c in classes
        if c.num_probe_true_positives
    ]
