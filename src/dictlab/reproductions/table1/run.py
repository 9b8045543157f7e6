"""``dictlab reproduce table1``: the bench's Table 1 at the paper's scale on a GPU, at the default preset otherwise.

The bench itself writes its full output (results.md with the paper's numbers beside ours, figures, report.html)
under ``OUT/bench``; this reproduction adds the claims of Table 1 checked against it.
"""

from pathlib import Path

import torch
from pydantic import BaseModel, Field

from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.bench.run import BenchRequest, run_bench
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.table1.report import table1_claims, table1_markdown
from dictlab.stopwatch import Stopwatch


class Table1Config(ReproductionConfig):
    """Which bench preset to run, and whether with its sparsity sweep."""

    preset: str | None = Field(default=None, description="Bench preset (default: paper on a GPU, default on a CPU).")
    sweep: bool = Field(default=True, description="Also run the preset's sparsity-coefficient sweep (ReLU, JumpReLU).")

    @classmethod
    def quick(cls, seed: int = 0) -> "Table1Config":
        return cls(seed=seed, preset="smoke")


class Table1Row(BaseModel):
    """One run of the bench, reduced to the Table-1 metrics."""

    method: str
    anchored: bool
    gt_recovery_dec: float
    mip_dec: float
    gt_recovery_enc: float
    mip_enc: float
    l0: float
    fvu: float


class Table1Results(BaseModel):
    config: Table1Config
    preset: str
    device: str
    records: list[Table1Row]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def run_table1(config: Table1Config, out: Path, echo: Echo) -> Table1Results:
    """Run the bench into ``out/bench`` and check Table 1's claims against it."""
    clock = Stopwatch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    preset = config.preset or ("paper" if device == "cuda" else "default")
    result = run_bench(
        BenchRequest(
            preset=preset, out=out / "bench", device=device, seed=config.seed, sweep=config.sweep, progress=False
        ),
        echo,
    )
    fields = set(Table1Row.model_fields)
    records = [Table1Row.model_validate(r.model_dump(include=fields)) for r in result.records]
    results = Table1Results(config=config, preset=preset, device=device, records=records, claims=table1_claims(records))
    finish("table1", out, results, table1_markdown, clock, echo)
    return results
