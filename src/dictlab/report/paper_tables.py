"""The paper's Table 1 (Tang et al., arXiv 2512.05534) as typed data, numbers verbatim.

Source: /work/shared/reference/linear-representation-bench.md §6.1. The paper's M_GT / M_IP are computed from
ENCODER rows (learned features := W_E^T), not dictlab's decoder metrics; compare like with like.
"""

from dataclasses import dataclass

METHOD_ORDER: tuple[str, ...] = (
    "relu",
    "jumprelu",
    "topk",
    "batchtopk",
    "matryoshka",
    "transcoder",
    "crosscoder",
)
"""Method keys in the order of the paper's Table 1 (and of every dictlab report table)."""


@dataclass(frozen=True)
class PaperTable1Setting:
    """The setting under which the paper's Table 1 was measured (all [P] facts)."""

    source: str
    metric_matrix: str
    n_features: int
    n_p: int
    n_r: int
    n_q: int
    sparsity: float
    tau: float
    evaluated_on: str


@dataclass(frozen=True)
class PaperTable1Row:
    """One Table 1 row: `*_gt_percent` are percentages as printed (84.90 = 84.90 %), `*_mip` in [0, 1].

    `gt_below_threshold` marks the rows whose 0.00 % carries the paper's footnote (every best match < τ).
    """

    method: str
    label: str
    gt_percent: float
    mip: float
    fa_gt_percent: float
    fa_mip: float
    gt_below_threshold: bool = False


PAPER_TABLE1_SETTING = PaperTable1Setting(
    source="Tang et al., arXiv 2512.05534, Table 1",
    metric_matrix="encoder",
    n_features=1000,
    n_p=768,
    n_r=768,
    n_q=16000,
    sparsity=0.99,
    tau=0.95,
    evaluated_on="non-anchored features",
)

PAPER_TABLE1_NOTE = (
    "Paper Table 1 numbers are ENCODER-row metrics (learned features = W_E rows), "
    "n = 1000, n_p = n_r = 768, n_q = 16000, S = 0.99, M_GT at τ = 0.95, non-anchored features only."
)

PAPER_TABLE1_ZERO_FOOTNOTE = (
    "M_GT is 0 % because all best-match similarities fall below the evaluation threshold (0.95)."
)

PAPER_TABLE1: dict[str, PaperTable1Row] = {
    row.method: row
    for row in (
        PaperTable1Row("relu", "ReLU SAE", 0.00, 0.205, 0.00, 0.246, gt_below_threshold=True),
        PaperTable1Row("jumprelu", "JumpReLU SAE", 0.00, 0.237, 0.00, 0.333, gt_below_threshold=True),
        PaperTable1Row("topk", "TopK SAE", 84.90, 0.983, 87.63, 0.986),
        PaperTable1Row("batchtopk", "BatchTopK SAE", 84.80, 0.981, 89.38, 0.988),
        PaperTable1Row("matryoshka", "Matryoshka SAE", 83.70, 0.982, 87.32, 0.985),
        PaperTable1Row("transcoder", "Transcoder", 23.60, 0.838, 25.05, 0.838),
        PaperTable1Row("crosscoder", "Crosscoder", 56.42, 0.940, 57.71, 0.941),
    )
}
"""Paper Table 1 keyed by dictlab method key, in METHOD_ORDER."""
