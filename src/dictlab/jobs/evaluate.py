"""``dictlab evaluate RUN... --store STORE``: the field's shared numbers for many SAEs at once — SAELens/SAEBench
core metrics, k-sparse probing, first-letter and WordNet absorption — as dictlab's typed JSON, SAEBench's output
layout and an HTML report with the L0 frontier.

Each SAE's results are written to ``OUT/results/<name>.json`` as soon as they are done, so a killed sweep resumes
with the SAEs it had not finished; the summary files (``evaluation.json``, ``saebench/``, ``results.md``,
``figures/``, ``report.html``) are staged and replaced whole at the end.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dictlab.data.store import ActivationStore, read_manifest
from dictlab.diagnostics.sources import DICTIONARY_HELP, DictionarySource, load_source
from dictlab.evals.rows import RowSelection, contiguous_rows, held_out_rows
from dictlab.evals.saebench import saebench_record, write_saebench
from dictlab.evals.suite import EVALS, EvalContext, EvalOutcome
from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object
from dictlab.models.saelens import saelens_config
from dictlab.outputs import RunIdentity, check_output, claim_output, folder_fingerprints, json_fingerprint, staged
from dictlab.progress import progress_bar
from dictlab.stopwatch import Stopwatch

EVALUATION_FILE = "evaluation.json"
RESULTS_DIR = "results"
SAEBENCH_DIR = "saebench"
AGREEMENT_METRICS = (
    "n_label_pairs",
    "n_flagged_pairs",
    "precision",
    "recall",
    "n_tilted_pairs",
    "tilted_precision",
    "tilted_recall",
)
"""The numbers of an absorption result's agreement with the label-free flags kept among an SAE's flat metrics."""


class EvaluateRequest(BaseModel):
    """Which SAEs, store and evaluations; the shared knobs of the evaluations; where results go."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    runs: tuple[Path, ...] = Field(description="SAEs: " + DICTIONARY_HELP.removeprefix("The dictionary: "))
    store: Path = Field(description="Activation store (dictlab capture) of the model and module the SAEs read.")
    module: str | None = Field(
        default=None,
        description="Module of the store (default: the one the first run was trained on, else the only one).",
    )
    evals: tuple[str, ...] = Field(default=("core",), description=f"Evaluations, comma-separated: {', '.join(EVALS)}.")
    out: Path = Field(default=Path("evaluation"), description="Output folder.")
    release: str = Field(
        default="dictlab", description="Release name in SAEBench's file names (<release>_<sae>_eval_results.json)."
    )
    rows: int = Field(default=100_000, gt=0, description="Store rows the activation metrics read (at most).")
    first_row: int | None = Field(
        default=None,
        ge=0,
        description="Read --rows rows from here (default: the rows the first run held out of training when it was "
        "trained on this store, else from row 0).",
    )
    batch_size: int = Field(default=4096, gt=0, description="Rows per batch of the activation metrics.")
    texts: int = Field(
        default=64, ge=0, description="Texts of the store's corpus for core's in-model CE/KL metrics (0: skip them)."
    )
    probing_stores: tuple[Path, ...] = Field(
        default=(),
        description="Labelled stores of the same model and module for k-sparse probing, comma-separated (default: "
        "--store itself).",
    )
    probing_ks: tuple[int, ...] = Field(default=(1, 2, 5, 10, 20), description="k of the k-sparse probes.")
    words: int = Field(default=2000, gt=0, description="Words (at most) of the first-letter and WordNet absorption.")
    seed: int = Field(default=0, description="Seed of every sampled subset and split.")
    overwrite: bool = Field(default=False, description="Replace the results in --out if they came from other inputs.")
    progress: bool = Field(default=True, description="Show progress bars.")

    @field_validator("evals")
    @classmethod
    def _known_evals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in EVALS]
        if unknown or not value:
            raise ValueError(f"unknown evaluation(s) {unknown}; choose from {', '.join(EVALS)}")
        return tuple(dict.fromkeys(value))

    @field_validator("runs")
    @classmethod
    def _some_runs(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        if not value:
            raise ValueError("give at least one SAE folder")
        return value


class SAEEvaluation(BaseModel):
    """One SAE's results: what it is, every evaluation's typed result and the flattened SAEBench metrics."""

    name: str
    path: str
    format: str
    architecture: str
    """The activation (relu, topk, jumprelu, batchtopk, matryoshka): one frontier line each."""
    d_sae: int
    k: int | None
    rows: str
    """Which store rows the activation metrics read."""
    metrics: dict[str, float | int | None]
    """``<eval_type_id>.<category>.<metric>`` → value, from each evaluation's SAEBench metrics."""
    results: dict[str, Any]
    """Evaluation name → dictlab's typed result (as JSON)."""
    seconds: dict[str, float]


_NOT_IDENTITY = {"runs", "store", "out", "overwrite", "progress"}


def _names(runs: tuple[Path, ...]) -> list[str]:
    names = [run.resolve().name for run in runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"SAE folders must have distinct names (they name the result files): {repeated} repeat")
    return names


def evaluate_identity(request: EvaluateRequest, sources: list[DictionarySource], store: ActivationStore) -> RunIdentity:
    """What makes an evaluation folder: the options, every SAE's files and the store's manifest."""
    inputs: dict[str, str] = {"store": json_fingerprint(store.manifest.model_dump(mode="json"))}
    for i, path in enumerate(request.probing_stores):
        inputs[f"probing_store/{i}"] = json_fingerprint(read_manifest(path).model_dump(mode="json"))
    for name, source in zip(_names(request.runs), sources, strict=True):
        inputs |= folder_fingerprints(source.path, source.files, prefix=f"{name}/")
    return RunIdentity(
        command="evaluate",
        config=request.model_dump(mode="json", exclude=_NOT_IDENTITY) | {"module": store.entry.name},
        inputs=inputs,
        paths={"store": str(request.store)}
        | {f"probing_store/{i}": str(path) for i, path in enumerate(request.probing_stores)}
        | {name: str(run) for name, run in zip(_names(request.runs), request.runs, strict=True)},
    )


def _open_store(request: EvaluateRequest, first: DictionarySource) -> ActivationStore:
    module = request.module
    if module is None:
        recorded = first.metadata.get("module") or first.metadata.get("hook_name")
        names = {name for m in read_manifest(request.store).modules for name in (m.name, m.folder)}
        module = recorded if isinstance(recorded, str) and recorded in names else None
    return ActivationStore(request.store, module)


def _check_widths(sources: list[DictionarySource], store: ActivationStore) -> None:
    for source in sources:
        cfg = source.model.cfg
        if cfg.kind != "sae":
            raise ValueError(f"{source.path}: dictlab evaluate reads SAEs; this is a {cfg.kind}")
        if cfg.d_in != store.width:
            raise ValueError(
                f"{source.path} reads d_in = {cfg.d_in} but module {store.entry.name} of "
                f"{store.root / 'manifest.json'} has width {store.width}: the SAE belongs to another model or module"
            )


def _rows(request: EvaluateRequest, first: DictionarySource, store: ActivationStore) -> RowSelection:
    if request.first_row is None:
        recorded = first.metadata.get("request")
        same_store = (
            isinstance(recorded, dict) and Path(str(recorded.get("store", ""))).resolve() == store.root.resolve()
        )
        held = held_out_rows(store, recorded, request.rows) if same_store and isinstance(recorded, dict) else None
        if held is not None and held.n_rows:
            return held
    return contiguous_rows(store, request.first_row or 0, request.rows)


def _flatten(eval_type_id: str, metrics: dict[str, dict[str, Any]]) -> dict[str, float | int | None]:
    flat: dict[str, float | int | None] = {}
    for category, values in metrics.items():
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float | None):
                continue
            finite = value is None or isinstance(value, int) or math.isfinite(value)
            flat[f"{eval_type_id}.{category}.{key}"] = value if finite else None
    return flat


def _evaluate_one(
    name: str, source: DictionarySource, context: EvalContext, request: EvaluateRequest
) -> tuple[SAEEvaluation, list[tuple[str, dict[str, Any], EvalOutcome]]]:
    metrics: dict[str, float | int | None] = {}
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    outcomes = []
    for eval_name in request.evals:
        clock = Stopwatch()
        outcome = EVALS[eval_name](context)
        seconds[eval_name] = clock.total
        metrics |= _flatten(outcome.eval_type_id, outcome.result.saebench_metrics())
        agreement = getattr(outcome.result, "agreement", None)
        if isinstance(agreement, BaseModel):
            fields = {k: v for k, v in agreement.model_dump().items() if k in AGREEMENT_METRICS}
            metrics |= _flatten(outcome.eval_type_id, {"agreement": fields})
        results[eval_name] = outcome.result.model_dump(mode="json")
        outcomes.append((eval_name, outcome.config, outcome))
    cfg = source.model.cfg
    evaluation = SAEEvaluation(
        name=name,
        path=str(source.path),
        format=source.format,
        architecture=cfg.activation,
        d_sae=cfg.d_sae,
        k=cfg.k,
        rows=context.rows.description,
        metrics=metrics,
        results=results,
        seconds=seconds,
    )
    return evaluation, outcomes


def _saebench_records(
    evaluation: SAEEvaluation,
    outcomes: list[tuple[str, dict[str, Any], EvalOutcome]],
    source: DictionarySource,
    release: str,
) -> list[dict[str, Any]]:
    try:
        sae_cfg: dict[str, Any] | None = saelens_config(source.model, source.metadata)
    except ValueError:
        sae_cfg = None
    records = []
    for _, config, outcome in outcomes:
        result = outcome.result
        unstructured = result.saebench_unstructured() if hasattr(result, "saebench_unstructured") else None
        records.append(
            saebench_record(
                outcome.eval_type_id,
                config,
                result,
                sae_cfg or {},
                release,
                evaluation.name,
                unstructured,
            )
        )
    return records


def run_evaluate(request: EvaluateRequest, echo: Callable[[str], None] = print) -> list[SAEEvaluation]:
    """Evaluate every SAE of ``request.runs`` and write the results (see the module docstring)."""
    names = _names(request.runs)
    sources = [load_source(run) for run in request.runs]
    store = _open_store(request, sources[0])
    _check_widths(sources, store)
    identity = evaluate_identity(request, sources, store)
    check_output(request.out, identity, request.overwrite)
    for eval_name in request.evals:
        EVALS.check(eval_name, store, request)  # e.g. probing without labels: refused before any work
    rows = _rows(request, sources[0], store)
    echo(f"{len(sources)} SAE(s) × {', '.join(request.evals)} on {rows.description}")
    shared: dict[str, Any] = {}
    evaluations: list[SAEEvaluation] = []
    records: list[dict[str, Any]] = []
    with claim_output(request.out, identity, request.overwrite, keep_on_failure=_has_results) as out:
        (out / RESULTS_DIR).mkdir(exist_ok=True)
        for name, source in progress_bar(
            list(zip(names, sources, strict=True)), desc="evaluate", unit=" SAEs", enabled=request.progress
        ):
            path = out / RESULTS_DIR / f"{name}.json"
            if path.is_file():
                saved = read_json_object(path, ValueError, "an unreadable partial result")
                evaluations.append(SAEEvaluation.model_validate(saved["evaluation"]))
                records.extend(saved["saebench"])
                echo(f"{name}: reusing {path}")
                continue
            context = EvalContext(source.model.eval(), store, rows, request, shared)
            evaluation, outcomes = _evaluate_one(name, source, context, request)
            saebench = _saebench_records(evaluation, outcomes, source, request.release)
            payload = {"evaluation": evaluation.model_dump(mode="json"), "saebench": saebench}
            atomic_write_text(path, json.dumps(payload, allow_nan=False) + "\n")
            evaluations.append(evaluation)
            records.extend(saebench)
            echo(_headline(evaluation))
        with staged(out) as stage:
            _write_summary(stage, evaluations, records, request)
    echo(f"wrote {out / EVALUATION_FILE}, {out / SAEBENCH_DIR}/ and {out / 'report.html'}")
    return evaluations


def _has_results(out: Path) -> bool:
    return any((out / RESULTS_DIR).glob("*.json"))


def _headline(evaluation: SAEEvaluation) -> str:
    from dictlab.report.markdown import fmt

    m = evaluation.metrics
    parts = [
        f"L0 {fmt(m.get('core.sparsity.l0'))}",
        f"EV {fmt(m.get('core.reconstruction_quality.explained_variance'))}",
        f"CE score {fmt(m.get('core.model_performance_preservation.ce_loss_score'))}",
    ]
    return f"{evaluation.name}: " + ", ".join(p for p in parts if not p.endswith("–"))


def _write_summary(
    stage: Path, evaluations: list[SAEEvaluation], records: list[dict[str, Any]], request: EvaluateRequest
) -> None:
    from dictlab.report.evaluation import evaluation_markdown, frontier_points
    from dictlab.report.frontier import write_frontier_figures
    from dictlab.report.reproduction_html import write_reproduction_report

    for record in records:
        write_saebench(stage / SAEBENCH_DIR, record)
    summary = {
        "evaluations": [e.model_dump(mode="json") for e in evaluations],
        "request": request.model_dump(mode="json"),
    }
    atomic_write_text(stage / EVALUATION_FILE, json.dumps(summary, indent=1, allow_nan=False) + "\n")
    figures = write_frontier_figures(frontier_points(evaluations), stage / "figures")
    markdown = evaluation_markdown(evaluations, [path.name for _, path in figures])
    atomic_write_text(stage / "results.md", markdown)
    config = request.model_dump(mode="json", exclude={"overwrite", "progress"})
    write_reproduction_report(stage, "dictlab evaluate", markdown, config, seed=request.seed)
