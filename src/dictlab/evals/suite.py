"""The evaluations ``dictlab evaluate`` runs by name, each an adapter from the job's shared settings to one
evaluation's options and entry function.

An adapter gets an :class:`EvalContext` (the SAE, the store, the selected rows, the job's settings and a cache
shared across the SAEs of one job — the language model and its activations on prompts, which do not depend on the
SAE, are computed once) and returns an :class:`EvalOutcome`.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dictlab.data.store import ActivationStore, read_manifest
from dictlab.evals.rows import RowSelection
from dictlab.models.dictionary import SparseDictionary


class EvalSettings(Protocol):
    """The job settings adapters read (``dictlab.jobs.evaluate.EvaluateRequest`` provides them)."""

    rows: int
    batch_size: int
    texts: int
    probing_stores: tuple[Path, ...]
    probing_ks: tuple[int, ...]
    words: int
    seed: int
    progress: bool


class SAEBenchModel(Protocol):
    """A pydantic result with SAEBench's metrics and details."""

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]: ...

    def saebench_details(self) -> list[dict[str, Any]]: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


@dataclass
class EvalContext:
    """What an evaluation of one SAE can read."""

    dictionary: SparseDictionary
    store: ActivationStore
    rows: RowSelection
    settings: EvalSettings
    shared: dict[str, Any] = field(default_factory=dict)
    """Cache shared by the SAEs of one job (keyed by what was computed)."""

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``shared[key]``, computed on first use."""
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]

    def language_model(self) -> Any:
        """The store's model (loaded once per job)."""
        from dictlab.lm.loading import load_language_model

        return self.cached("lm", lambda: load_language_model(self.store.manifest.model))


@dataclass(frozen=True)
class EvalOutcome:
    """One evaluation's result, its SAEBench eval type and the options it ran with (SAEBench's ``eval_config``)."""

    eval_type_id: str
    config: dict[str, Any]
    result: Any
    """A pydantic model with ``saebench_metrics()`` and ``saebench_details()``."""


Check = Callable[[ActivationStore, EvalSettings], None]
"""Raises ValueError when an evaluation cannot run on a store with these settings (before any work)."""


@dataclass(frozen=True)
class EvalSpec:
    """A named evaluation: its adapter, the check that refuses what it cannot use, and a line of help."""

    run: Callable[[EvalContext], EvalOutcome]
    check: Check
    description: str


def _needs_labels(store: ActivationStore, what: str) -> None:
    if len(store.label_names) < 2:
        raise ValueError(
            f"{what} needs per-text labels with at least two classes, but {store.root / 'manifest.json'} has "
            f"label_names {store.label_names or '[]'}: capture a labelled corpus (a named corpus or a .jsonl with "
            "a label field) or pass --probing-stores"
        )


def _needs_causal_lm(store: ActivationStore, what: str) -> None:
    if not store.manifest.model:
        raise ValueError(f"{what} runs the store's model, but {store.root / 'manifest.json'} names none")


class EvalRegistry(Mapping[str, Callable[[EvalContext], EvalOutcome]]):
    """Evaluation name → adapter, with :meth:`check` for the store requirements."""

    def __init__(self, specs: dict[str, EvalSpec]) -> None:
        self._specs = specs

    def __getitem__(self, name: str) -> Callable[[EvalContext], EvalOutcome]:
        return self._specs[name].run

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def check(self, name: str, store: ActivationStore, settings: EvalSettings) -> None:
        """Raise ValueError when evaluation ``name`` cannot run on ``store`` with ``settings``."""
        self._specs[name].check(store, settings)

    def describe(self) -> str:
        return "; ".join(f"{name}: {spec.description}" for name, spec in self._specs.items())


def _settings(store: ActivationStore, key: str, default: Any) -> Any:
    value = store.manifest.settings.get(key, default)
    return default if value is None else value


def store_texts(store: ActivationStore, text_ids: list[int]) -> list[str]:
    """The corpus texts with indices ``text_ids`` of the store's capture (its corpus re-read as the capture read
    it); an error names the manifest when the corpus is not recorded or has changed size."""
    from dictlab.lm.capture import capture_corpus

    corpus = store.manifest.settings.get("corpus")
    if not isinstance(corpus, str):
        raise ValueError(f"{store.root / 'manifest.json'}: settings.corpus is missing, so its texts cannot be re-read")
    texts = capture_corpus(
        corpus,
        store.manifest.settings.get("max_per_class"),
        store.manifest.settings.get("max_texts"),
        int(_settings(store, "seed", 0)),
    ).texts
    if text_ids and max(text_ids) >= len(texts):
        raise ValueError(
            f"{store.root / 'manifest.json'}: corpus {corpus!r} now has {len(texts):,} texts but the store indexes "
            f"text {max(text_ids):,}; the corpus changed since the capture"
        )
    return [texts[i] for i in text_ids]


def _run_core(ctx: EvalContext) -> EvalOutcome:
    from dictlab.evals.core import EVAL_TYPE_ID, CoreOptions, evaluate_core

    store, rows, settings = ctx.store, ctx.rows, ctx.settings
    options = CoreOptions(
        batch_size=settings.batch_size,
        context_size=int(_settings(store, "max_length", 128)),
        skip_first=int(_settings(store, "skip_first", 1)),
        exclude_special_tokens=bool(_settings(store, "drop_special", True)),
    )
    in_model: dict[str, Any] = {}
    if settings.texts > 0:
        texts = ctx.cached("core/texts", lambda: store_texts(store, rows.text_ids(store, settings.texts)))
        in_model = {"language_model": ctx.language_model(), "texts": texts, "module": store.entry.name}
    result = evaluate_core(
        ctx.dictionary,
        rows.batches(store, settings.batch_size),
        options,
        text_index=rows.text_index_batches(store, settings.batch_size),
        progress=settings.progress,
        **in_model,
    )
    config = options.model_dump(mode="json") | {"rows": rows.description, "n_eval_texts": settings.texts}
    return EvalOutcome(EVAL_TYPE_ID, config, result)


def _check_core(store: ActivationStore, settings: EvalSettings) -> None:
    if settings.texts > 0:
        _needs_causal_lm(store, "core's CE-loss/KL metrics (--texts > 0; 0 skips them)")


def probing_store(store: ActivationStore, path: Path) -> ActivationStore:
    """The labelled store at ``path``, opened at ``store``'s module; errors name its manifest."""
    names = {name for m in read_manifest(path).modules for name in (m.name, m.folder)}
    if store.entry.name not in names:
        raise ValueError(
            f"{path / 'manifest.json'} has no module {store.entry.name!r} (it has {sorted(names)}): a probing store "
            "must be captured from the same model and module as --store"
        )
    other = ActivationStore(path, store.entry.name)
    if other.manifest.model != store.manifest.model:
        raise ValueError(
            f"{path / 'manifest.json'} was captured from model {other.manifest.model!r}, --store from "
            f"{store.manifest.model!r}: the SAEs read one model's activations"
        )
    return other


def _probing_stores(ctx: EvalContext) -> list[ActivationStore]:
    paths = ctx.settings.probing_stores
    if not paths:
        return [ctx.store]
    return ctx.cached("probing/stores", lambda: [probing_store(ctx.store, path) for path in paths])


def _check_probing(store: ActivationStore, settings: EvalSettings) -> None:
    for labelled in [probing_store(store, path) for path in settings.probing_stores] or [store]:
        _needs_labels(labelled, "k-sparse probing")


def _run_probing(ctx: EvalContext) -> EvalOutcome:
    from dictlab.evals.probing import (
        EVAL_TYPE_ID,
        ProbingOptions,
        SparseProbingStores,
        probing_baselines,
        probing_data,
        sparse_probing,
    )

    settings = ctx.settings
    options = ProbingOptions(ks=settings.probing_ks, seed=settings.seed, batch_size=settings.batch_size)
    cfg = ctx.dictionary.cfg
    results = []
    for store in _probing_stores(ctx):
        key = f"probing/{store.root}"
        data = ctx.cached(f"{key}/data", lambda store=store: probing_data(store, options, settings.progress))
        baselines = ctx.cached(
            f"{key}/baselines/{cfg.model_dump_json()}",
            lambda store=store, data=data: probing_baselines(store, data, cfg, options, settings.progress),
        )
        results.append(sparse_probing(ctx.dictionary, store, data, options, settings.progress, baselines))
    config = options.model_dump(mode="json") | {"dataset_names": [r.dataset_name for r in results]}
    return EvalOutcome(EVAL_TYPE_ID, config, SparseProbingStores(stores=results))


def _check_lm(what: str) -> Check:
    def check(store: ActivationStore, _settings: EvalSettings) -> None:
        _needs_causal_lm(store, what)

    return check


def _run_first_letter(ctx: EvalContext) -> EvalOutcome:
    from dictlab.evals.absorption import (
        EVAL_TYPE_ID,
        FirstLetterAbsorptionOptions,
        FirstLetterOptions,
        absorption_agreement,
        first_letter_absorption,
        first_letter_data,
    )

    module, settings = ctx.store.entry.name, ctx.settings
    data_options = FirstLetterOptions(words=settings.words, seed=settings.seed)
    data = ctx.cached(
        f"absorption/first_letter/{module}",
        lambda: first_letter_data(ctx.language_model(), module, data_options, settings.progress),
    )
    options = FirstLetterAbsorptionOptions(seed=settings.seed, batch_size=settings.batch_size)
    result = first_letter_absorption(ctx.dictionary, data, options, settings.progress)
    result.agreement = absorption_agreement(ctx.dictionary, data.activations, result.pairs, result.letters)
    config = data_options.model_dump(mode="json") | options.model_dump(mode="json")
    return EvalOutcome(EVAL_TYPE_ID, config, result)


def _run_wordnet(ctx: EvalContext) -> EvalOutcome:
    from dictlab.evals.absorption import (
        WordNetAbsorptionOptions,
        WordNetOptions,
        absorption_agreement,
        wordnet_absorption,
        wordnet_data,
    )
    from dictlab.evals.absorption.wordnet import EVAL_TYPE_ID

    module, settings = ctx.store.entry.name, ctx.settings
    data_options = WordNetOptions(words=settings.words, seed=settings.seed)
    data = ctx.cached(
        f"absorption/wordnet/{module}",
        lambda: wordnet_data(ctx.language_model(), module, data_options, settings.progress),
    )
    options = WordNetAbsorptionOptions(seed=settings.seed, batch_size=settings.batch_size)
    result = wordnet_absorption(ctx.dictionary, data, options, settings.progress)
    result.agreement = absorption_agreement(ctx.dictionary, data.activations, result.pairs, result.lexnames)
    config = data_options.model_dump(mode="json") | options.model_dump(mode="json")
    return EvalOutcome(EVAL_TYPE_ID, config, result)


EVALS = EvalRegistry(
    {
        "core": EvalSpec(
            _run_core,
            _check_core,
            "SAELens/SAEBench core metrics: reconstruction, shrinkage, sparsity, density, CE-loss and KL scores",
        ),
        "probing": EvalSpec(
            _run_probing,
            _check_probing,
            "SAEBench k-sparse probing on labelled stores, beside a dense probe, PCA-k and a random SAE",
        ),
        "absorption": EvalSpec(
            _run_first_letter,
            _check_lm("first-letter absorption"),
            "SAEBench first-letter absorption (arXiv 2409.14507) on the store's model, with the agreement of the "
            "label-free nested and tilted pairs",
        ),
        "absorption-wordnet": EvalSpec(
            _run_wordnet,
            _check_lm("WordNet absorption"),
            "absorption of WordNet lexnames by single-lemma latents, with the same agreement",
        ),
    }
)
"""Every evaluation ``dictlab evaluate --evals`` runs, by name."""


def result_markdown(name: str, result: dict[str, Any]) -> str:
    """The markdown an evaluation's typed result (as JSON) contributes to the report ('' when none)."""
    if name == "probing":
        from dictlab.evals.probing import SparseProbingStores

        return SparseProbingStores.model_validate(result).markdown()
    if name in ("absorption", "absorption-wordnet"):
        from dictlab.evals.absorption import FirstLetterAbsorptionResult, WordNetAbsorptionResult, absorption_markdown

        model = FirstLetterAbsorptionResult if name == "absorption" else WordNetAbsorptionResult
        return absorption_markdown(model.model_validate(result))
    return ""
