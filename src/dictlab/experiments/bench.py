"""``dictlab bench``: the seven methods of Tang et al.'s Table 1, each without and with feature anchoring.

All runs share one generated Linear Representation Bench dataset. A method's plain and anchored dictionaries
start from the same initialisation and train together in one pass over the same batches. Output folder::

    OUT/bench.json                   the preset and request (a resumed run must match it)
    OUT/data/ground_truth_<view>.safetensors
    OUT/train/<method>/              shared checkpoint + JSONL log of the pair (resumable)
    OUT/runs/<method>[-fa]/          cfg.json, weights.safetensors, ground_truth.safetensors, metrics.json
    OUT/train/<method>-sweep/, OUT/runs/<method>@<coefficient>/   the ReLU / JumpReLU sparsity sweep
    OUT/results.json (Table-1 runs), sweep.json (sweep runs), results.md, figures/*.png, report.html

A group of runs whose folders all hold ``metrics.json`` is not retrained, so an interrupted bench resumes.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from dictlab.atomic import atomic_write_text
from dictlab.data import DataView, LRBDataset, generate_lrb
from dictlab.experiments.notes import bench_notes
from dictlab.experiments.presets import BenchPreset, get_preset
from dictlab.metrics import evaluate_dictionary, recovery_probe
from dictlab.models import DictionaryConfig, SparseDictionary, save_dictionary
from dictlab.report import (
    console_table,
    environment_info,
    plot_best_match_histograms,
    plot_recovery_curves,
    plot_training_trajectories,
    results_markdown,
    write_report_html,
)
from dictlab.training import (
    Anchors,
    AnchorTerms,
    Member,
    RecipeConfig,
    ShuffledBatches,
    Trainer,
    read_training_log,
)
from dictlab.training.config import Precision, TrainingPath

log = logging.getLogger(__name__)

METHODS: dict[str, tuple[str, str]] = {
    "relu": ("sae", "relu"),
    "jumprelu": ("sae", "jumprelu"),
    "topk": ("sae", "topk"),
    "batchtopk": ("sae", "batchtopk"),
    "matryoshka": ("sae", "matryoshka"),
    "transcoder": ("transcoder", "topk"),
    "crosscoder": ("crosscoder", "topk"),
}
"""Method -> (data view / dictionary kind, activation). Transcoder and crosscoder use TopK (paper silent)."""


class BenchRequest(BaseModel):
    """What ``dictlab bench`` was asked to do (its fields are the CLI options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str = Field("default", description="Preset: smoke (tests, <1 min), default (≤10 min CPU), paper (GPU).")
    out: Path = Field(Path("runs/bench"), description="Output folder (created; an existing bench resumes).")
    device: str = Field("cpu", description="Torch device, e.g. cpu or cuda.")
    methods: tuple[str, ...] = Field(tuple(METHODS), description="Methods to run (comma-separated).")
    steps: int | None = Field(None, gt=0, description="Override the preset's number of training steps.")
    seed: int | None = Field(None, description="Override the preset's data, model and batch-order seeds.")
    anchor_terms: AnchorTerms | None = Field(
        None, description="Override the preset's anchor terms of the +FA runs: both (the paper's), encoder, decoder."
    )
    sweep: bool = Field(True, description="Also run the preset's ReLU/JumpReLU sparsity-coefficient sweep.")
    path: TrainingPath | None = Field(
        None, description="Override the TopK family's training path: auto (the preset's), sparse or dense."
    )
    precision: Precision | None = Field(None, description="Override the preset's precision: fp32, tf32 or bf16.")
    progress: bool = Field(True, description="Show progress bars.")


SWEEP_ACTIVATIONS = ("relu", "jumprelu")
"""Methods with a sparsity coefficient, swept because the paper does not state theirs."""


@dataclass(frozen=True)
class RunSpec:
    """One bench run: a method, with or without anchors, and its architecture and recipe.

    ``name`` is its folder under ``runs/``: ``topk``, ``topk-fa``, or ``relu@0.3`` for a sweep run.
    """

    name: str
    method: str
    anchored: bool
    dictionary: DictionaryConfig
    recipe: RecipeConfig


def resolve_preset(request: BenchRequest) -> BenchPreset:
    """The preset named in ``request`` with its step and seed overrides applied."""
    preset = get_preset(request.preset)
    unknown = sorted(set(request.methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if not request.methods:
        raise ValueError("no methods selected")
    update: dict[str, Any] = {}
    if request.steps is not None:
        update["train"] = preset.train.model_copy(update={"steps": request.steps})
    if request.seed is not None:
        train = update.get("train", preset.train)
        update["train"] = train.model_copy(update={"seed": request.seed})
        update["data"] = preset.data.model_copy(update={"seed": request.seed})
        update["model_seed"] = request.seed
        update["anchor_seed"] = request.seed
    if request.anchor_terms is not None:
        update["anchor_terms"] = request.anchor_terms
    if request.path is not None:
        update["training_path"] = request.path
    if request.precision is not None:
        update["train"] = update.get("train", preset.train).model_copy(update={"precision": request.precision})
    return preset.model_copy(update=update)


def run_spec(
    preset: BenchPreset, method: str, anchored: bool, view: DataView, coefficient: float | None = None
) -> RunSpec:
    """Architecture and recipe of ``method`` under ``preset``; ``coefficient`` overrides its sparsity coefficient
    (a sweep run, named ``method@coefficient``)."""
    kind, activation = METHODS[method]
    dictionary = DictionaryConfig(
        kind=kind,  # type: ignore[arg-type]
        d_in=view.d_in,
        d_out=view.d_out,
        d_sae=preset.d_sae,
        n_sources=preset.data.n_sources if kind == "crosscoder" else 1,
        activation=activation,  # type: ignore[arg-type]
        k=preset.k if activation in ("topk", "batchtopk", "matryoshka") else None,
        jumprelu_init_threshold=preset.jumprelu_init_threshold,
        jumprelu_bandwidth=preset.jumprelu_bandwidth,
        matryoshka_prefixes=preset.matryoshka_prefixes,
        apply_b_dec_to_input=kind != "transcoder",
    )
    if coefficient is None:
        name = f"{method}-fa" if anchored else method
        coefficient = _sparsity_coefficients(preset, activation)[0]
    elif activation not in SWEEP_ACTIVATIONS:
        raise ValueError(f"method {method!r} has no sparsity coefficient to sweep")
    else:
        name = f"{method}@{coefficient:g}" + ("-fa" if anchored else "")
    recipe = RecipeConfig(
        lr=preset.lr,
        sparsity_coefficient=coefficient,
        aux_coefficient=preset.aux_coefficient,
        dead_window_samples=preset.data.n_train,
        anchor_coefficient=preset.anchor_coefficient if anchored else 0.0,
        anchor_terms=preset.anchor_terms,
        path=preset.training_path,
    )
    return RunSpec(name, method, anchored, dictionary, recipe)


def sweep_coefficients(preset: BenchPreset, method: str) -> tuple[float, ...]:
    """The preset's sweep coefficients of ``method`` other than its Table-1 coefficient (() for other methods)."""
    main, sweep = _sparsity_coefficients(preset, METHODS[method][1])
    return tuple(sorted(set(sweep) - {main}))


def _sparsity_coefficients(preset: BenchPreset, activation: str) -> tuple[float, tuple[float, ...]]:
    """(Table-1 coefficient, sweep coefficients) of ``activation`` under ``preset``; (0.0, ()) without a penalty."""
    return {
        "relu": (preset.relu_coefficient, preset.relu_sweep),
        "jumprelu": (preset.jumprelu_coefficient, preset.jumprelu_sweep),
    }.get(activation, (0.0, ()))


def choose_anchor_features(n_features: int, n_anchors: int, seed: int) -> torch.Tensor:
    """The ground-truth features used as anchors: a seeded random subset, sorted. [n_anchors] int64."""
    if n_anchors > n_features:
        raise ValueError(f"n_anchors ({n_anchors}) exceeds the number of features ({n_features})")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_features, generator=generator)[:n_anchors].sort().values


def _anchors_for(view: DataView, feature_ids: torch.Tensor) -> Anchors:
    return Anchors(view.truth.features_in[feature_ids], view.truth.features_out[feature_ids], feature_ids)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is unreadable or not valid JSON: {err}") from err


def _check_resume(out: Path, manifest: dict[str, Any]) -> None:
    path = out / "bench.json"
    if path.exists():
        previous = _read_json(path)
        if previous.get("preset") != manifest["preset"]:
            raise ValueError(
                f"{out} holds a bench with a different preset or overrides; use a fresh --out or delete {path}"
            )
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def _train_runs(
    group: str,
    specs: list[RunSpec],
    preset: BenchPreset,
    dataset: LRBDataset,
    view: DataView,
    anchor_ids: torch.Tensor,
    out: Path,
    device: torch.device,
    progress: bool,
) -> list[dict[str, Any]]:
    """Train ``specs`` together in one pass (shared checkpoint ``OUT/train/<group>``), evaluate, save each run."""
    members = []
    for spec in specs:
        generator = torch.Generator().manual_seed(preset.model_seed)
        model = SparseDictionary(spec.dictionary, generator)
        anchors = _anchors_for(view, anchor_ids) if spec.anchored and len(anchor_ids) else None
        excluded = anchor_ids if anchors is not None else ()
        probe = recovery_probe(view.truth.features_in, view.truth.features_out, excluded)
        members.append(Member(spec.name, model, spec.recipe, view.materialize, anchors, probe))
    train = preset.train.model_copy(update={"progress": progress})
    batches = ShuffledBatches(dataset.codes("train"), train.batch_size, train.seed)
    trainer = Trainer(members, batches, train, workdir=out / "train" / group, device=device)
    summaries = trainer.fit()
    log_lines = read_training_log(out / "train" / group)
    records = []
    test_codes = dataset.codes("test")
    for spec, member, summary in zip(specs, members, summaries, strict=True):
        started = time.perf_counter()
        excluded = anchor_ids if spec.anchored else torch.empty(0, dtype=torch.long)
        evaluation = evaluate_dictionary(
            member.model, view.truth.features_in, view.truth.features_out, test_codes, view.materialize, excluded
        )
        record: dict[str, Any] = {
            "method": spec.method,
            "anchored": spec.anchored,
            "kind": spec.dictionary.kind,
            "activation": spec.dictionary.activation,
            "k": spec.dictionary.k,
            "sparsity_coefficient": spec.recipe.sparsity_coefficient,
            "n_anchors": len(anchor_ids) if spec.anchored else 0,
            **evaluation.as_dict(),
            "steps": summary.steps,
            "wall_s": round(summary.train_seconds, 2),
            "samples_per_s": round(summary.samples_per_s, 1),
            "eval_s": round(time.perf_counter() - started, 2),
            "run_dir": f"runs/{spec.name}",
            "trajectory": training_trajectory(log_lines, spec.name),
        }
        run_dir = out / "runs" / spec.name
        save_dictionary(
            member.model,
            run_dir,
            metadata={
                "method": spec.method,
                "anchored": spec.anchored,
                "recipe": spec.recipe.model_dump(mode="json"),
                "train": train.model_dump(mode="json"),
                "anchor_feature_ids": excluded.tolist(),
                "data": dataset.meta(),
            },
        )
        view.truth.save(run_dir / "ground_truth.safetensors")
        atomic_write_text(run_dir / "metrics.json", json.dumps(record, indent=2) + "\n")
        records.append(record)
    return records


TRAJECTORY_KEYS = ("gt_recovery_dec", "mip_dec", "mip_enc")


def training_trajectory(log_lines: list[dict[str, Any]], member: str) -> dict[str, list[float]]:
    """Recovery during training of ``member`` from its probe lines: {"step": [...], "mip_dec": [...], ...}."""
    lines = [line for line in log_lines if line.get("member") == member and "mip_dec" in line]
    return {key: [line[key] for line in lines] for key in ("step", *TRAJECTORY_KEYS)}


def _finished_records(out: Path, names: list[str]) -> list[dict[str, Any]] | None:
    paths = [out / "runs" / name / "metrics.json" for name in names]
    if not all(p.exists() for p in paths):
        return None
    return [_read_json(p) for p in paths]


@dataclass(frozen=True)
class BenchResult:
    """Records of a finished bench: the Table-1 runs (``results.json``) and the sparsity sweep (``sweep.json``)."""

    records: list[dict[str, Any]]
    sweep: list[dict[str, Any]]


def run_bench(request: BenchRequest, echo: Callable[[str], None] = log.info) -> BenchResult:
    """Run (or resume) the bench described by ``request``."""
    return run_bench_preset(resolve_preset(request), request, echo)


def run_bench_preset(preset: BenchPreset, request: BenchRequest, echo: Callable[[str], None] = log.info) -> BenchResult:
    """Run (or resume) the bench with an explicit ``preset`` (e.g. a point of an ablation sweep); ``request``
    supplies the output folder, device, methods and switches (its preset name and overrides are not used)."""
    device = torch.device(request.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but torch.cuda.is_available() is False")
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"preset": preset.model_dump(mode="json"), "methods": list(request.methods), "sweep": request.sweep}
    _check_resume(out, manifest)

    started = time.perf_counter()
    dataset = generate_lrb(preset.data)
    interference = {name: round(r.max_interference, 4) for name, r in dataset.interference.items()}
    echo(f"generated LRB data in {time.perf_counter() - started:.1f}s; achieved max interference {interference}")
    views = {kind: dataset.view(kind).to(device) for kind in {METHODS[m][0] for m in request.methods}}
    for kind, view in views.items():
        view.truth.save(out / "data" / f"ground_truth_{kind}.safetensors")
    anchor_ids = choose_anchor_features(preset.data.n_features, preset.n_anchors, preset.anchor_seed)

    def train_group(group: str, specs: list[RunSpec], view: DataView) -> list[dict[str, Any]]:
        finished = _finished_records(out, [spec.name for spec in specs])
        if finished is not None:
            echo(f"{group}: already finished, reusing {out / 'runs'}")
            return finished
        return _train_runs(group, specs, preset, dataset, view, anchor_ids, out, device, request.progress)

    records: list[dict[str, Any]] = []
    for method in request.methods:
        view = views[METHODS[method][0]]
        pair = train_group(method, [run_spec(preset, method, anchored, view) for anchored in (False, True)], view)
        records.extend(pair)
        atomic_write_text(out / "results.json", json.dumps(records, indent=2) + "\n")
        echo(
            f"{method}: decoder GT@0.95 {pair[0]['gt_recovery_dec']:.1%} / +FA {pair[1]['gt_recovery_dec']:.1%}, "
            f"{pair[0]['samples_per_s']:.0f} samples/s"
        )
    sweep: list[dict[str, Any]] = []
    for method in request.methods if request.sweep else ():
        coefficients = sweep_coefficients(preset, method)
        if coefficients:
            view = views[METHODS[method][0]]
            specs = [run_spec(preset, method, False, view, coefficient=c) for c in coefficients]
            sweep.extend(runs := train_group(f"{method}-sweep", specs, view))
            atomic_write_text(out / "sweep.json", json.dumps(sweep, indent=2) + "\n")
            echo(
                f"{method} sweep: "
                + ", ".join(
                    f"{r['sparsity_coefficient']:g} → L0 {r['l0']:.1f}, decoder GT {r['gt_recovery_dec']:.1%}"
                    for r in runs
                )
            )
    write_bench_report(out, preset, BenchResult(records, sweep), request, interference)
    echo(console_table(records))
    echo(f"bench finished in {time.perf_counter() - started:.0f}s; results in {out}")
    return BenchResult(records, sweep)


def write_bench_report(
    out: Path, preset: BenchPreset, result: BenchResult, request: BenchRequest, interference: dict
) -> None:
    """results.md, figures and report.html for ``result``."""
    records = result.records
    config = {"preset": preset.model_dump(mode="json"), "achieved_max_interference": interference}
    notes = bench_notes(records, preset, result.sweep)
    command = f"dictlab bench --preset {request.preset}"
    markdown = results_markdown(
        records, preset=preset.name, config=config, notes=notes, command=command, sweep_records=result.sweep
    )
    atomic_write_text(out / "results.md", markdown)
    figures = [
        plot_recovery_curves(records, out / "figures" / "recovery_curves.png"),
        plot_best_match_histograms(records, out / "figures" / "best_match_histograms.png"),
        plot_training_trajectories(records, out / "figures" / "training_trajectories.png"),
    ]
    write_report_html(
        out,
        title=f"dictlab bench — preset {preset.name}",
        records=records,
        results_md=markdown,
        figures=figures,
        config=config,
        environment=environment_info(request.device, seed=preset.train.seed),
        notes=notes,
        sweep_records=result.sweep,
    )
