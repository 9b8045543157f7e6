"""``dictlab features``: what every latent of a dictionary means, from one pass over an activation store — JSON,
an offline HTML browser and, on request, the Neuronpedia upload layout."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from dictlab.data.store import ActivationStore, read_manifest
from dictlab.diagnostics.sources import DICTIONARY_HELP, DictionarySource, load_source
from dictlab.features.codes import PassCodes
from dictlab.features.compute import FeatureOptions, compute_features, pass_range
from dictlab.features.report import FeatureReport, LatentDiagnosis, LatentFeatures
from dictlab.features.summary import feature_summary
from dictlab.files.atomic import atomic_write_text
from dictlab.models.formats import dictionary_files
from dictlab.outputs import RunIdentity, check_output, claim_output, folder_fingerprints, json_fingerprint, staged
from dictlab.stopwatch import Stopwatch

FEATURES_FILE = "features.json"
LATENTS_DIR = "latents"
CHUNK = 256
"""Latents per file under latents/."""


class FeaturesRequest(FeatureOptions):
    """A features job: which dictionary, store and module, what to add, where results go."""

    run: Path = Field(description=DICTIONARY_HELP)
    store: Path = Field(description="Activation store captured with token ids (dictlab capture).")
    module: str | None = Field(
        default=None, description="Module of the store (default: the one the run was trained on, else the only one)."
    )
    out: Path = Field(default=Path("features"), description="Output folder.")
    diagnose: bool = Field(default=False, description="Add the per-latent results of dictlab diagnose.")
    diagnose_rows: int = Field(
        default=100_000, gt=1, description="Rows of the pass (the first ones) that the diagnosis reads."
    )
    lam: float | None = Field(
        default=None,
        gt=0,
        description="λ of the diagnosis (default: the ReLU training coefficient / 2, else estimated from the codes).",
    )
    logit_lens: bool = Field(default=True, description="Add the logit lens when the store's model is a causal LM.")
    ablation_effects: tuple[int, ...] = Field(
        default=(),
        description="Latents (comma-separated) whose top contexts get the effect of ablating the latent on every "
        "next-token log-probability (runs the store's causal LM on each context's text).",
    )
    browser: bool = Field(default=True, description="Write the offline HTML browser to OUT/browser.")
    neuronpedia: bool = Field(
        default=False, description="Also write OUT/neuronpedia/batch-*.json in Neuronpedia's upload layout."
    )
    overwrite: bool = Field(default=False, description="Replace the results in --out if they came from other inputs.")
    progress: bool = Field(default=True, description="Show progress bars.")


_NOT_IDENTITY = {"run", "store", "out", "overwrite", "progress"}


def features_identity(request: FeaturesRequest, store: ActivationStore) -> RunIdentity:
    """What makes a features folder: the options, the dictionary's files and the store's manifest."""
    root, files = dictionary_files(request.run)
    inputs = folder_fingerprints(root, files, prefix="dictionary/")
    inputs["store"] = json_fingerprint(store.manifest.model_dump(mode="json"))
    return RunIdentity(
        command="features",
        config=request.model_dump(mode="json", exclude=_NOT_IDENTITY) | {"module": store.entry.name},
        inputs=inputs,
        paths={"dictionary": str(request.run), "store": str(request.store)},
    )


def _open_store(request: FeaturesRequest, source: DictionarySource) -> ActivationStore:
    """The store's module named by --module, else the one the run was trained on (if the store has it), else its
    only module."""
    module = request.module
    if module is None:
        recorded = source.metadata.get("module") or source.metadata.get("hook_name")
        names = {name for m in read_manifest(request.store).modules for name in (m.name, m.folder)}
        module = recorded if isinstance(recorded, str) and recorded in names else None
    store = ActivationStore(request.store, module)
    store.require_tokens("dictlab features")
    return store


def _check_latents(request: FeaturesRequest, d_sae: int) -> None:
    wrong = [i for i in request.ablation_effects if not 0 <= i < d_sae]
    if wrong:
        raise ValueError(f"--ablation-effects names latents {wrong} outside 0..{d_sae - 1} of this dictionary")


def run_features(request: FeaturesRequest, echo: Callable[[str], None] = print) -> FeatureReport:
    """Compute the features and write ``features.json``, ``latents/``, ``browser/`` (and ``neuronpedia/``)."""
    source = load_source(request.run)
    store = _open_store(request, source)
    identity = features_identity(request, store)
    check_output(request.out, identity, request.overwrite)
    first, n_rows = pass_range(store, request)
    dictionary = source.model.eval()
    _check_latents(request, dictionary.d_sae)
    lm = _language_model(store, request)
    diagnoses = _diagnoser(request, source, store, first, n_rows) if request.diagnose else None
    report = compute_features(
        dictionary,
        store,
        FeatureOptions.model_validate(request.model_dump(include=set(FeatureOptions.model_fields))),
        decode_tokens=_token_decoder(store, lm),
        lm_model=lm.model if lm is not None and lm.is_causal and request.logit_lens else None,
        diagnoses=diagnoses,
        run=str(request.run),
        progress=request.progress,
    )
    if request.ablation_effects:
        clock = Stopwatch()
        _add_ablation_effects(report, lm, store, dictionary, request)
        report.seconds["ablation_effects"] = clock.total
    with claim_output(request.out, identity, request.overwrite) as out, staged(out) as stage:
        write_features(report, stage)
        if request.browser:
            from dictlab.report.feature_browser import write_browser

            write_browser(report, stage / "browser")
        if request.neuronpedia:
            from dictlab.features.neuronpedia import write_neuronpedia

            write_neuronpedia(report, stage / "neuronpedia", model_id=store.manifest.model, layer=store.entry.name)
    live = report.n_live
    summary = feature_summary(report)
    if summary["one_token_or_label"] is not None:
        echo(
            f"of {summary['judged']:,} live latents with {summary['top_contexts']} top contexts: "
            f"{summary['one_token']:.1%} share one current token, "
            + (f"{summary['one_label']:.1%} one label, " if summary["one_label"] is not None else "")
            + f"{summary['one_token_or_label']:.1%} one or the other"
        )
    echo(
        f"{len(report.latents):,} latents ({live:,} live, {len(report.latents) - live:,} dead) over {n_rows:,} rows "
        f"in {sum(report.seconds.values()):.1f} s -> {out / FEATURES_FILE}"
        + (f", {out / 'browser' / 'index.html'}" if request.browser else "")
    )
    return report


def write_features(report: FeatureReport, out: Path) -> None:
    """``features.json`` (everything but the latents) and ``latents/latents-NNNNN.json`` (CHUNK latents each)."""
    (out / LATENTS_DIR).mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, len(report.latents), CHUNK):
        name = f"latents-{start // CHUNK:05d}.json"
        chunk = [latent.model_dump(mode="json") for latent in report.latents[start : start + CHUNK]]
        atomic_write_text(out / LATENTS_DIR / name, json.dumps(chunk, ensure_ascii=False) + "\n")
        files.append(name)
    head = report.model_dump(mode="json", exclude={"latents"}) | {
        "summary": feature_summary(report),
        "latent_files": files,
        "n_latents": len(report.latents),
    }
    atomic_write_text(out / FEATURES_FILE, json.dumps(head, indent=1, ensure_ascii=False) + "\n")


def read_features(folder: str | Path) -> FeatureReport:
    """Read back what :func:`write_features` wrote."""
    folder = Path(folder)
    head = json.loads((folder / FEATURES_FILE).read_text())
    files = head.pop("latent_files")
    head.pop("n_latents")
    head.pop("summary", None)
    latents: list[Any] = []
    for name in files:
        latents.extend(json.loads((folder / LATENTS_DIR / Path(name).name).read_text()))
    return FeatureReport.model_validate(head | {"latents": latents})


def _language_model(store: ActivationStore, request: FeaturesRequest) -> Any:
    """The store's model (for token texts, the logit lens and ablation effects), or None when it cannot load."""
    from dictlab.lm.loading import load_language_model

    try:
        return load_language_model(store.manifest.model)
    except (FileNotFoundError, ValueError, OSError, ImportError) as err:
        if request.ablation_effects:
            raise ValueError(f"--ablation-effects needs the store's model {store.manifest.model!r}: {err}") from err
        return None


def _token_decoder(store: ActivationStore, lm: Any) -> Callable[[Sequence[int]], list[str]] | None:
    if lm is None:
        return None
    tokenizer = lm.tokenizer
    return lambda ids: [tokenizer.decode([int(i)]) for i in ids]


def _diagnoser(
    request: FeaturesRequest, source: DictionarySource, store: ActivationStore, first: int, n_rows: int
) -> Callable[[PassCodes], tuple[list[LatentDiagnosis], dict]]:
    from dictlab.diagnostics.diagnose import DiagnoseOptions, diagnose_model
    from dictlab.diagnostics.problem import DiagnosticsInputError
    from dictlab.diagnostics.sae_mapping import L1_ACTIVATIONS, dictionary_from_model, effective_lambda, encoder_codes
    from dictlab.features.diagnosis import diagnosis_headline, latent_diagnoses

    rows = min(request.diagnose_rows, n_rows)
    X = torch.from_numpy(store.read(first, first + rows).astype(np.float64))
    lam, note = request.lam, None
    if lam is None and source.model.cfg.activation not in L1_ACTIVATIONS:
        try:
            lam = effective_lambda(X, dictionary_from_model(source.model), encoder_codes(source.model, X))
        except DiagnosticsInputError as err:
            raise DiagnosticsInputError(
                f"--diagnose of a {source.model.cfg.activation} dictionary needs a λ: {err}"
            ) from err
        note = f"λ = {lam:.4g} estimated from the encoder's codes (median w_kᵀr_n); pass --lam to choose it"

    def run(_codes: PassCodes) -> tuple[list[LatentDiagnosis], dict]:
        options = DiagnoseOptions(lam=lam, max_points=rows)
        diagnostics = diagnose_model(source.model, X, None, options, training_coefficient=source.training_coefficient)
        headline = diagnosis_headline(diagnostics) | ({"lambda_note": note} if note else {})
        return latent_diagnoses(diagnostics), headline

    return run


def _add_ablation_effects(
    report: FeatureReport, lm: Any, store: ActivationStore, dictionary: Any, request: FeaturesRequest
) -> None:
    """Fill ``ablation_effect`` of the top contexts of the latents in ``request.ablation_effects``. Each context's
    text runs from its first token (the whole prefix, as in capture) to the context's last token; the latent is
    ablated at the context's own row."""
    from dictlab.features.contexts import trimmed
    from dictlab.lm.interventions import ablation_effects

    if lm is None or not lm.is_causal:
        raise ValueError("--ablation-effects needs a causal LM as the store's model")
    for index in request.ablation_effects:
        latent: LatentFeatures = report.latents[index]
        contexts = [c for c in latent.top if c.tokens]
        queries, shown = [], []
        for context in contexts:
            after = len(context.tokens) - context.centre - 1
            prefix = store.contexts(np.asarray([context.row]), max(context.position, after))[0]
            tokens, centre, _ = trimmed(prefix, np.zeros(prefix.shape, np.float32), max(context.position, after))
            tokens = tokens[: centre + after + 1]
            queries.append((torch.as_tensor(tokens), index, centre))
            shown.append(centre - context.centre)
        effects = ablation_effects(lm, store.entry.name, dictionary, queries)
        for context, effect, start in zip(contexts, effects, shown, strict=True):
            window = effect[start : start + len(context.tokens)].tolist()
            context.ablation_effect = [None if not np.isfinite(v) else float(v) for v in window]
