"""``dictlab bench``: the methods of Tang et al.'s Table 1, each without and with feature anchoring.

All runs share one generated Linear Representation Bench dataset. A method's plain and anchored dictionaries
start from the same initialisation and train together in one pass over the same batches. Output folder::

    OUT/run.json                     the command and resolved preset (a resumed run must match it)
    OUT/data/ground_truth_<view>.safetensors
    OUT/train/<method>/              shared checkpoint + JSONL log of the pair (resumable)
    OUT/runs/<method>[-fa]/          cfg.json, weights.safetensors, ground_truth.safetensors, metrics.json
    OUT/train/<method>-sweep/, OUT/runs/<method>@<coefficient>/   the sparsity-coefficient sweep
    OUT/results.json (Table-1 runs), sweep.json (sweep runs), results.md, figures/*.png, report.html

A group of runs whose folders all hold ``metrics.json`` is not retrained, so an interrupted bench resumes.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from dictlab.data import DataView, LRBDataset, generate_lrb
from dictlab.devices import check_device
from dictlab.distributed import world
from dictlab.distributed.mesh import Mesh
from dictlab.distributed.plan import my_units, on_every_process
from dictlab.files.atomic import atomic_write_text
from dictlab.metrics import evaluate_dictionary, recovery_probe
from dictlab.models import SparseDictionary, save_dictionary
from dictlab.outputs import RunIdentity, claim_output
from dictlab.reproductions.bench.methods import (
    Method,
    RunSpec,
    anchors_for,
    bench_methods,
    choose_anchor_features,
    get_method,
    run_spec,
    sweep_coefficients,
    table1_coefficient,
)
from dictlab.reproductions.bench.presets import BenchPreset, get_preset
from dictlab.reproductions.bench.records import BenchRecord, Trajectory, read_record, record_json, records_json
from dictlab.reproductions.bench.report import console_table, write_bench_report
from dictlab.reproductions.expected import METHOD_ORDER
from dictlab.training import AnchorTerms, Member, ShuffledBatches, Trainer, read_training_log
from dictlab.training.config import TRACKING_FIELDS, Precision, TrainingPath

log = logging.getLogger(__name__)


class BenchRequest(BaseModel):
    """What ``dictlab bench`` was asked to do (its fields are the CLI options)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    preset: str = Field(
        default="default", description="Preset: smoke (tests, <1 min), default (minutes on a CPU), paper (GPU)."
    )
    out: Path = Field(default=Path("runs/bench"), description="Output folder (created; an existing bench resumes).")
    device: str = Field(default="cpu", description="Torch device, e.g. cpu or cuda.")
    methods: tuple[str, ...] = Field(
        default=METHOD_ORDER,
        description="Methods to run (comma-separated): any registered activation (an SAE), transcoder, crosscoder.",
    )
    steps: int | None = Field(default=None, gt=0, description="Override the preset's number of training steps.")
    seed: int | None = Field(default=None, description="Override the preset's data, model and batch-order seeds.")
    anchor_terms: AnchorTerms | None = Field(
        default=None,
        description="Override the preset's anchor terms of the +FA runs: both (the paper's), encoder, decoder.",
    )
    sweep: bool = Field(default=True, description="Also run the preset's sparsity-coefficient sweep (ReLU, JumpReLU).")
    path: TrainingPath | None = Field(
        default=None, description="Override the TopK family's training path: auto (the preset's), sparse or dense."
    )
    precision: Precision | None = Field(
        default=None, description="Override the preset's precision: fp32, tf32 or bf16."
    )
    progress: bool = Field(default=True, description="Show progress (bars on a terminal, periodic lines otherwise).")
    overwrite: bool = Field(
        default=False, description="Replace the bench in --out if it was made with other settings or another command."
    )


@dataclass(frozen=True)
class BenchResult:
    """A finished bench: the Table-1 runs (``results.json``) and the sparsity sweep (``sweep.json``)."""

    records: list[BenchRecord]
    sweep: list[BenchRecord]


def resolve_preset(request: BenchRequest) -> BenchPreset:
    """The preset named in ``request`` with its step, seed, anchoring, path and precision overrides applied."""
    preset = get_preset(request.preset)
    methods = bench_methods()
    unknown = sorted(set(request.methods) - set(methods))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(methods)}")
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


def bench_identity(preset: BenchPreset) -> RunIdentity:
    """What makes a bench folder: the resolved preset (every size, seed and coefficient). The methods and the
    sweep switch are not part of it: a later run with other methods adds runs of the same preset to the folder
    and reuses the finished ones. Where metrics are reported (the tracking fields) is not part of it either."""
    config = preset.model_dump(mode="json", exclude={"train": set(TRACKING_FIELDS)})
    return RunIdentity(command="bench", config={"preset": config})


def _has_progress(out: Path) -> bool:
    """Whether a failed bench leaves something a rerun would resume from."""
    return any(out.glob("train/*/checkpoint.pt")) or any(out.glob("runs/*/metrics.json"))


def training_trajectory(log_lines: list[dict[str, Any]], member: str) -> Trajectory:
    """Recovery during training of ``member``, from its probe lines in the training log."""
    lines = [line for line in log_lines if line.get("member") == member and "mip_dec" in line]
    return Trajectory(
        step=[line["step"] for line in lines],
        gt_recovery_dec=[line["gt_recovery_dec"] for line in lines],
        mip_dec=[line["mip_dec"] for line in lines],
        mip_enc=[line["mip_enc"] for line in lines],
    )


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
) -> list[BenchRecord]:
    """Train ``specs`` together in one pass (shared checkpoint ``OUT/train/<group>``), evaluate, save each run."""
    members = []
    for spec in specs:
        generator = torch.Generator().manual_seed(preset.model_seed)
        model = SparseDictionary(spec.dictionary, generator, mesh=Mesh.alone())
        anchors = anchors_for(view, anchor_ids) if spec.anchored and len(anchor_ids) else None
        excluded = anchor_ids if anchors is not None else ()
        probe = recovery_probe(view.truth.features_in, view.truth.features_out, excluded)
        members.append(Member(spec.name, model, spec.recipe, view.materialize, anchors, probe))
    train = preset.train.model_copy(update={"progress": progress})
    batches = ShuffledBatches(dataset.codes("train"), train.batch_size, train.seed)
    trainer = Trainer(members, batches, train, workdir=out / "train" / group, device=device, mesh=Mesh.alone())
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
        record = BenchRecord(
            method=spec.method,
            anchored=spec.anchored,
            kind=spec.dictionary.kind,
            activation=spec.dictionary.activation,
            k=spec.dictionary.k,
            sparsity_coefficient=spec.recipe.sparsity_coefficient,
            n_anchors=len(anchor_ids) if spec.anchored else 0,
            **evaluation.model_dump(),
            steps=summary.steps,
            wall_s=round(summary.train_seconds, 2),
            samples_per_s=round(summary.samples_per_s, 1),
            eval_s=round(time.perf_counter() - started, 2),
            run_dir=f"runs/{spec.name}",
            trajectory=training_trajectory(log_lines, spec.name),
        )
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
        atomic_write_text(run_dir / "metrics.json", record_json(record))
        records.append(record)
    return records


def _finished_records(out: Path, names: list[str]) -> list[BenchRecord] | None:
    paths = [out / "runs" / name / "metrics.json" for name in names]
    if not all(p.exists() for p in paths):
        return None
    return [read_record(p) for p in paths]


def run_bench(request: BenchRequest, echo: Callable[[str], None] = log.info) -> BenchResult:
    """Run (or resume) the bench described by ``request``."""
    return run_bench_preset(resolve_preset(request), request, echo)


def run_bench_preset(preset: BenchPreset, request: BenchRequest, echo: Callable[[str], None] = log.info) -> BenchResult:
    """Run (or resume) the bench with an explicit ``preset`` (e.g. a point of an ablation sweep); ``request``
    supplies the output folder, device, methods and switches (its preset name and overrides are not used)."""
    device = check_device(request.device)
    methods = [get_method(name) for name in request.methods]
    for method in methods:  # refuse a method the preset cannot configure before anything is written
        table1_coefficient(preset, method.activation)
    with claim_output(request.out, bench_identity(preset), request.overwrite, _has_progress) as out:
        return _run_bench(preset, request, methods, device, out, echo)


def _run_bench(
    preset: BenchPreset,
    request: BenchRequest,
    methods: list[Method],
    device: torch.device,
    out: Path,
    echo: Callable[[str], None],
) -> BenchResult:
    started = time.perf_counter()
    dataset = generate_lrb(preset.data)
    interference = {name: round(r.max_interference, 4) for name, r in dataset.interference.items()}
    echo(f"generated LRB data in {time.perf_counter() - started:.1f}s; achieved max interference {interference}")
    views = {kind: dataset.view(kind).to(device) for kind in {m.kind for m in methods}}
    for kind, view in views.items():
        if world().is_main:
            view.truth.save(out / "data" / f"ground_truth_{kind}.safetensors")
    anchor_ids = choose_anchor_features(preset.data.n_features, preset.n_anchors, preset.anchor_seed)

    def train_group(group: str, specs: list[RunSpec], view: DataView) -> list[BenchRecord]:
        finished = _finished_records(out, [spec.name for spec in specs])
        if finished is not None:
            echo(f"{group}: already finished, reusing {out / 'runs'}")
            return finished
        return _train_runs(group, specs, preset, dataset, view, anchor_ids, out, device, request.progress)

    groups: list[tuple[str, list[RunSpec], DataView]] = []
    for method in methods:
        view = views[method.kind]
        groups.append(
            (method.name, [run_spec(preset, method.name, anchored, view) for anchored in (False, True)], view)
        )
    for method in methods if request.sweep else ():
        view = views[method.kind]
        coefficients = sweep_coefficients(preset, method.name)
        specs = [run_spec(preset, method.name, False, view, coefficient=c) for c in coefficients]
        if specs:
            groups.append((f"{method.name}-sweep", specs, view))

    def my_groups() -> dict[int, list[str]]:  # under torchrun each process trains its share of the passes
        return {i: [record_json(r) for r in train_group(*groups[i])] for i in my_units(len(groups))}

    done: dict[int, list[str]] = {}
    for share in on_every_process(my_groups):
        done.update(share)
    by_group = [[BenchRecord.model_validate_json(text) for text in done[i]] for i in range(len(groups))]
    records = [
        r for (name, _, _), runs in zip(groups, by_group, strict=True) if not name.endswith("-sweep") for r in runs
    ]
    sweep = [r for (name, _, _), runs in zip(groups, by_group, strict=True) if name.endswith("-sweep") for r in runs]
    for (name, _, _), runs in zip(groups, by_group, strict=True):
        if name.endswith("-sweep"):
            described = (
                f"{r.sparsity_coefficient:g} → L0 {r.l0:.1f}, decoder GT {r.gt_recovery_dec:.1%}" for r in runs
            )
            echo(f"{name.removesuffix('-sweep')} sweep: " + ", ".join(described))
        else:
            echo(
                f"{name}: decoder GT@0.95 {runs[0].gt_recovery_dec:.1%} / +FA {runs[1].gt_recovery_dec:.1%}, "
                f"{runs[0].samples_per_s:.0f} samples/s"
            )
    if not world().is_main:
        return BenchResult(records, sweep)
    atomic_write_text(out / "results.json", records_json(records))
    if sweep:
        atomic_write_text(out / "sweep.json", records_json(sweep))
    result = BenchResult(records, sweep)
    write_bench_report(out, preset, result.records, result.sweep, request.preset, request.device, interference)
    echo(console_table(records))
    echo(f"bench finished in {time.perf_counter() - started:.0f}s; results in {out}")
    return result
