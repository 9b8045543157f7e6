"""results.md of ``dictlab evaluate``: the table of every SAE's headline metrics, the frontier figures and each
evaluation's own tables."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dictlab.report.frontier import FRONTIER_METRICS, L0_KEY, FrontierPoint
from dictlab.report.markdown import fmt, markdown_table

if TYPE_CHECKING:
    from dictlab.jobs.evaluate import SAEEvaluation

SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("L0", L0_KEY),
    ("EV", "core.reconstruction_quality.explained_variance"),
    ("MSE", "core.reconstruction_quality.mse"),
    ("cos", "core.reconstruction_quality.cossim"),
    ("L2 ratio", "core.shrinkage.l2_ratio"),
    ("rel. bias", "core.shrinkage.relative_reconstruction_bias"),
    ("CE score", "core.model_performance_preservation.ce_loss_score"),
    ("KL score", "core.model_behavior_preservation.kl_div_score"),
    ("alive", "core.misc_metrics.frac_alive"),
    ("probe k=1", "sparse_probing.sae.sae_top_1_test_accuracy"),
    ("probe k=5", "sparse_probing.sae.sae_top_5_test_accuracy"),
    ("absorption", "absorption_first_letter.mean.mean_absorption_fraction_score"),
)
"""(column label, flattened metric key) of the summary table; columns no SAE has are left out."""


def frontier_points(evaluations: Sequence["SAEEvaluation"]) -> list[FrontierPoint]:
    """One frontier point per SAE (its architecture is its line)."""
    return [FrontierPoint(e.name, e.architecture, e.metrics) for e in evaluations]


def summary_table(evaluations: Sequence["SAEEvaluation"]) -> str:
    """Markdown: one row per SAE (sorted by architecture, then L0) with the :data:`SUMMARY_COLUMNS` it has."""
    columns = [
        (label, key) for label, key in SUMMARY_COLUMNS if any(e.metrics.get(key) is not None for e in evaluations)
    ]

    def order(e: "SAEEvaluation") -> tuple[str, float]:
        l0 = e.metrics.get(L0_KEY)
        return e.architecture, float(l0) if l0 is not None else float("inf")

    rows = [
        [e.name, e.architecture, f"{e.d_sae:,}", e.k if e.k is not None else "–"]
        + [fmt(None if e.metrics.get(key) is None else float(e.metrics[key] or 0.0)) for _, key in columns]
        for e in sorted(evaluations, key=order)
    ]
    return markdown_table(["SAE", "architecture", "d_sae", "k", *[label for label, _ in columns]], rows)


def evaluation_markdown(evaluations: Sequence["SAEEvaluation"], figures: Sequence[str]) -> str:
    """The whole results.md; ``figures`` are the frontier PNG names under figures/."""
    lines = [
        "# SAE evaluation",
        "",
        f"{len(evaluations)} SAE(s); activation metrics on {evaluations[0].rows}." if evaluations else "No SAE.",
        "",
        summary_table(evaluations) if evaluations else "",
        "",
    ]
    if figures:
        labels = {"frontier-" + m.key.split(".")[-1].replace("_", "-") + ".png": m.label for m in FRONTIER_METRICS}
        lines += [
            "## L0 frontier",
            "",
            "Each metric against L0 (log scale), one point per SAE, a line per architecture.",
            "",
        ]
        lines += [f"![{labels.get(name, name)}](figures/{name})" for name in figures]
        lines.append("")
    for section in _sections(evaluations):
        lines += [section, ""]
    return "\n".join(lines).rstrip() + "\n"


def _sections(evaluations: Sequence["SAEEvaluation"]) -> list[str]:
    """Each evaluation's own per-SAE markdown (written by the evaluation module), under one heading per SAE."""
    from dictlab.evals.suite import result_markdown

    sections = []
    for e in evaluations:
        parts = [text for name, result in e.results.items() if (text := result_markdown(name, result))]
        if parts:
            sections.append(f"## {e.name}\n\n" + "\n\n".join(parts))
    return sections
