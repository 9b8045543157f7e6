"""Claims and results.md of ``dictlab reproduce table1``."""

from typing import TYPE_CHECKING

from dictlab.report.markdown import markdown_table
from dictlab.reproductions.bench.notes import TOPK_FAMILY
from dictlab.reproductions.claims import Claim, claim, claims_table
from dictlab.reproductions.expected import PAPER_TABLE1

if TYPE_CHECKING:
    from dictlab.reproductions.table1.run import Table1Results, Table1Row


def table1_claims(records: "list[Table1Row]") -> list[Claim]:
    """Table 1's pattern: the TopK family recovers most features, and anchoring raises MIP (decoder side here)."""
    by = {(r.method, r.anchored): r for r in records}
    claims = []
    for method in TOPK_FAMILY:
        if (method, False) in by and (method, True) in by:
            plain, fa = by[(method, False)], by[(method, True)]
            paper = PAPER_TABLE1[method]
            claims.append(
                claim(
                    f"{method}: recovers most features and anchoring raises MIP",
                    f"encoder GT {paper.gt_percent:.1f} % → {paper.fa_gt_percent:.1f} %, MIP {paper.mip:.3f} → "
                    f"{paper.fa_mip:.3f}",
                    f"decoder GT {100 * plain.gt_recovery_dec:.1f} % → {100 * fa.gt_recovery_dec:.1f} %, MIP "
                    f"{plain.mip_dec:.4f} → {fa.mip_dec:.4f}",
                    plain.gt_recovery_dec >= 0.5 and fa.mip_dec >= plain.mip_dec,
                )
            )
    return claims


def table1_markdown(results: "Table1Results") -> str:
    rows = [
        [
            r.method + (" +FA" if r.anchored else ""),
            f"{100 * r.gt_recovery_dec:.1f} %",
            f"{r.mip_dec:.4f}",
            f"{100 * r.gt_recovery_enc:.1f} %",
            f"{r.mip_enc:.4f}",
            f"{r.l0:.1f}",
            f"{r.fvu:.3f}",
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
