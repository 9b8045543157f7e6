"""``dictlab reproduce table1``: the bench's Table 1 at the paper's scale on a GPU, at the default preset otherwise.

The bench itself writes its full output (results.md with the paper's numbers beside ours, figures, report.html)
under ``OUT/bench``; this reproduction adds the claims of Table 1 checked against it.
"""

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from dictlab.experiments.bench import BenchRequest, run_bench
from dictlab.experiments.optimality.common import Claim, Echo, claim, claims_table, finish, markdown_table
from dictlab.report.paper_tables import PAPER_TABLE1
from dictlab.stopwatch import Stopwatch


class Table1Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    preset: str | None = Field(None, description="Bench preset (default: paper on a GPU, default on a CPU).")

    @classmethod
    def quick(cls, seed: int = 0) -> "Table1Config":
        return cls(seed=seed, preset="smoke")


class Table1Results(BaseModel):
    config: Table1Config
    preset: str
    device: str
    records: list[dict[str, Any]]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def table1_claims(records: list[dict[str, Any]]) -> list[Claim]:
    """Table 1's pattern: the TopK family recovers most features, and anchoring raises MIP (decoder side here)."""
    by = {(r["method"], r["anchored"]): r for r in records}
    claims = []
    for method in ("topk", "batchtopk", "matryoshka"):
        if (method, False) in by and (method, True) in by:
            plain, fa = by[(method, False)], by[(method, True)]
            paper = PAPER_TABLE1.get(method)
            expected = (
                f"encoder GT {paper.gt_percent:.1f} % → {paper.fa_gt_percent:.1f} %, MIP {paper.mip:.3f} → "
                f"{paper.fa_mip:.3f}"
                if paper
                else "most features, FA ≥ plain"
            )
            claims.append(
                claim(
                    f"{method}: recovers most features and anchoring raises MIP",
                    expected,
                    f"decoder GT {100 * plain['gt_recovery_dec']:.1f} % → {100 * fa['gt_recovery_dec']:.1f} %, MIP "
                    f"{plain['mip_dec']:.4f} → {fa['mip_dec']:.4f}",
                    plain["gt_recovery_dec"] >= 0.5 and fa["mip_dec"] >= plain["mip_dec"],
                )
            )
    return claims


def table1_markdown(results: Table1Results) -> str:
    rows = [
        [
            r["method"] + (" +FA" if r["anchored"] else ""),
            f"{100 * r['gt_recovery_dec']:.1f} %",
            f"{r['mip_dec']:.4f}",
            f"{100 * r['gt_recovery_enc']:.1f} %",
            f"{r['mip_enc']:.4f}",
            f"{r['l0']:.1f}",
            f"{r['fvu']:.3f}",
        ]
        for r in results.records
    ]
    return (
        "\n\n".join(
            [
                "# table1: the bench's Table 1",
                f"Preset `{results.preset}` on {results.device}; the full bench output (the paper's numbers beside "
                "ours, data-driven notes, figures, report.html) is in `bench/`.",
                markdown_table(["run", "dec GT@0.95", "dec MIP", "enc GT@0.95", "enc MIP", "L0", "FVU"], rows),
                "## Claims",
                claims_table(results.claims),
            ]
        )
        + "\n"
    )


def run_table1(config: Table1Config, out: Path, echo: Echo) -> Table1Results:
    clock = Stopwatch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    preset = config.preset or ("paper" if device == "cuda" else "default")
    result = run_bench(
        BenchRequest(preset=preset, out=out / "bench", device=device, seed=config.seed, progress=False), echo
    )
    keys = ("method", "anchored", "gt_recovery_dec", "mip_dec", "gt_recovery_enc", "mip_enc", "l0", "fvu")
    records = [{k: r[k] for k in keys} for r in result.records]
    results = Table1Results(config=config, preset=preset, device=device, records=records, claims=table1_claims(records))
    finish("table1", out, results, table1_markdown, clock, echo)
    return results
