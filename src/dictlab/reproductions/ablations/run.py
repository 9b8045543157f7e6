"""``dictlab reproduce ablations``: the paper's Tables 4–7 as sweeps of the bench, scaled to a preset.

Each point of a sweep is a full bench run (plain and anchored dictionaries from one initialisation, in one pass)
with one setting of the preset changed; it lands in ``points/<table>-<value>/`` with its own results and report,
and a finished point is reused when the command is run again.

* ``superposition`` (Table 4, ReLU SAEs): n = ratio × d for the paper's ratios n/768 = 1.04 … 1.82.
* ``interference`` (Table 5): maximum signed interference M ∈ {0.05, 0.2, 0.5}.
* ``sparsity`` (Table 6): activation probability 1 − S ∈ {0.005, 0.01, 0.1} (the paper's column labels).
* ``topk_k`` (Table 7, TopK SAEs): k at the paper's k / (mean active features) = 3.2, 6.4, 12.8.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from dictlab.reproductions.ablations.report import ablation_claims, ablations_markdown, plot_ablations
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.bench.notes import paper_saes
from dictlab.reproductions.bench.presets import BenchPreset, get_preset
from dictlab.reproductions.bench.run import BenchRequest, run_bench_preset
from dictlab.reproductions.claims import Claim, Echo
from dictlab.stopwatch import Stopwatch

TableName = Literal["superposition", "interference", "sparsity", "topk_k"]
SAE_METHODS = paper_saes()
"""The paper's SAE methods (ReLU, JumpReLU, TopK, BatchTopK, Matryoshka)."""


class AblationsConfig(ReproductionConfig):
    """Which sweeps, at which points, on which bench preset."""

    preset: str = Field(default="default", description="Bench preset every point starts from.")
    tables: tuple[TableName, ...] = ("superposition", "interference", "sparsity", "topk_k")
    methods: tuple[str, ...] = Field(
        default=SAE_METHODS, description="Methods of the interference and sparsity sweeps."
    )
    superposition_ratios: tuple[float, ...] = (1.04, 1.17, 1.30, 1.43, 1.56, 1.69, 1.82)
    interferences: tuple[float, ...] = (0.05, 0.2, 0.5)
    activation_probabilities: tuple[float, ...] = (0.005, 0.01, 0.1)
    k_per_active: tuple[float, ...] = (3.2, 6.4, 12.8)

    @classmethod
    def quick(cls, seed: int = 0) -> "AblationsConfig":
        return cls(
            seed=seed,
            preset="smoke",
            methods=("relu", "topk"),
            superposition_ratios=(1.04, 1.43),
            interferences=(0.2,),
            activation_probabilities=(0.1,),
            k_per_active=(3.2,),
        )


class AblationRecord(BaseModel):
    """One run of a sweep point: method, anchoring and its recovery metrics."""

    method: str
    anchored: bool
    gt_recovery_dec: float
    mip_dec: float
    gt_recovery_enc: float
    mip_enc: float
    mip_chance: float
    l0: float
    fvu: float
    dead_fraction: float


class AblationPoint(BaseModel):
    table: TableName
    value: float = Field(description="The swept setting: n/d ratio, M, 1 − S or k per active feature.")
    setting: dict[str, float | int] = Field(description="What changed in the preset.")
    records: list[AblationRecord] = Field(description="Per run: method, anchored and the recovery metrics.")


class AblationsResults(BaseModel):
    config: AblationsConfig
    preset: BenchPreset
    points: list[AblationPoint]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def _with_data(preset: BenchPreset, **update: Any) -> BenchPreset:
    return preset.model_copy(update={"data": preset.data.model_copy(update=update)})


def sweep_points(config: AblationsConfig, preset: BenchPreset) -> list[tuple[TableName, float, BenchPreset, tuple]]:
    """(table, value, preset of the point, methods) for every point of the requested sweeps."""
    d = preset.data.d_in
    anchor_share = preset.n_anchors / preset.data.n_features
    points: list[tuple[TableName, float, BenchPreset, tuple]] = []

    def superposition() -> None:
        for ratio in config.superposition_ratios:
            n = round(ratio * d)
            point = _with_data(preset, n_features=n).model_copy(update={"n_anchors": max(1, round(anchor_share * n))})
            points.append(("superposition", ratio, point, ("relu",)))

    def interference() -> None:
        for M in config.interferences:
            points.append(("interference", M, _with_data(preset, max_interference=M), config.methods))

    def sparsity() -> None:
        for p in config.activation_probabilities:
            points.append(("sparsity", p, _with_data(preset, sparsity=1 - p), config.methods))

    def topk_k() -> None:
        active = preset.data.n_features * (1 - preset.data.sparsity)
        for ratio in config.k_per_active:
            k = min(preset.d_sae, max(1, round(ratio * active)))
            points.append(("topk_k", ratio, preset.model_copy(update={"k": k}), ("topk",)))

    builders: dict[TableName, Callable[[], None]] = {
        "superposition": superposition,
        "interference": interference,
        "sparsity": sparsity,
        "topk_k": topk_k,
    }
    for table in config.tables:
        builders[table]()
    return points


def _setting(table: TableName, preset: BenchPreset) -> dict[str, float | int]:
    data = preset.data
    return {
        "superposition": {"n_features": data.n_features, "d_in": data.d_in, "n_anchors": preset.n_anchors},
        "interference": {"max_interference": data.max_interference},
        "sparsity": {"sparsity": data.sparsity},
        "topk_k": {"k": preset.k, "activation_rate": preset.k / preset.d_sae},
    }[table]


def run_ablations(config: AblationsConfig, out: Path, echo: Echo) -> AblationsResults:
    """Run every point of the requested sweeps (reusing finished points) and check the paper's findings."""
    clock = Stopwatch()
    base = get_preset(config.preset)
    base = base.model_copy(
        update={
            "train": base.train.model_copy(update={"seed": config.seed}),
            "data": base.data.model_copy(update={"seed": config.seed}),
            "model_seed": config.seed,
            "anchor_seed": config.seed,
        }
    )
    points = []
    plan = sweep_points(config, base)
    for number, (table, value, preset, methods) in enumerate(plan, start=1):
        folder = out / "points" / f"{table}-{value:g}"
        request = BenchRequest(out=folder, methods=methods, sweep=False, progress=False)
        result = run_bench_preset(preset, request, echo=lambda _: None)
        fields = set(AblationRecord.model_fields)
        records = [AblationRecord.model_validate(r.model_dump(include=fields)) for r in result.records]
        points.append(AblationPoint(table=table, value=value, setting=_setting(table, preset), records=records))
        summary = ", ".join(f"{r.method}{'+FA' if r.anchored else ''} {r.mip_dec:.3f}" for r in records)
        echo(f"[{number}/{len(plan)}] {table} = {value:g}: decoder MIP {summary} ({clock.total:.0f}s)")
    results = AblationsResults(config=config, preset=base, points=points)
    results.claims = ablation_claims(results)
    plot_ablations(results, out / "figures" / "ablations.png")
    finish("ablations", out, results, ablations_markdown, clock, echo)
    return results
