"""Table, claims and figure of ``dictlab reproduce real-anchoring``."""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dictlab.report.markdown import fmt, markdown_table, pct
from dictlab.reproductions.bench.figures import RecoveryCurves, plot_recovery_curves
from dictlab.reproductions.claims import Claim, claim, claims_table

if TYPE_CHECKING:
    from dictlab.reproductions.real_anchoring.run import RealAnchoringResults


def _at(taus: Sequence[float], values: Sequence[float], tau: float) -> float:
    """The value of a τ-curve at the threshold closest to ``tau``."""
    return values[min(range(len(taus)), key=lambda i: abs(taus[i] - tau))]


def plot_anchoring(results: "RealAnchoringResults", path: Path) -> Path:
    """GT recovery vs τ against the non-anchored class means, encoder and decoder, plain and +FA."""
    return plot_recovery_curves([RecoveryCurves.of(r.method, r.anchored, r.evaluation) for r in results.runs], path)


def anchoring_claims(results: "RealAnchoringResults") -> list[Claim]:
    """What the run shows, as checkable statements (verdicts are measured, whatever their sign)."""
    by = {(r.method, r.anchored): r.evaluation for r in results.runs}
    claims = [
        claim(
            "class-mean directions are meaningful concept directions",
            f"nearest-direction accuracy well above chance ({pct(results.chance_accuracy)})",
            pct(results.nearest_class_mean_accuracy),
            results.nearest_class_mean_accuracy > 3 * results.chance_accuracy,
        )
    ]
    for method in sorted({r.method for r in results.runs}):
        plain, fa = by[(method, False)], by[(method, True)]
        claims.append(
            claim(
                f"{method}: anchoring half the classes raises decoder MIP on the other half (Tang et al. Table 2)",
                "MIP(+FA) > MIP(plain)",
                f"{fmt(plain.mip_dec, 4)} → {fmt(fa.mip_dec, 4)} ({fa.mip_dec - plain.mip_dec:+.4f})",
                fa.mip_dec > plain.mip_dec,
            )
        )
    return claims


def _setup(results: "RealAnchoringResults") -> str:
    config = results.config
    n_truth = len(results.classes) - len(results.anchored_classes)
    return " ".join(
        [
            f"Model `{config.model}`, module `{config.module}` mean-pooled over tokens (the sentence embedding),",
            f"corpus `{config.corpus}` (≤ {config.max_per_class} texts per class): {results.store_rows} embeddings",
            f"of width {results.width} in {len(results.classes)} classes; {results.training_rows} train /",
            f"{results.heldout_rows} held out. Proxy ground truth: centred, normalised class means of the training",
            f"rows. Anchored classes ({len(results.anchored_classes)}, λ_anchor = {config.anchor_coefficient}):",
            f"{', '.join(results.anchored_classes)}. Recovery is measured against the other {n_truth} class means",
            "only.",
            f"SAEs: d_sae = {config.expansion}×{results.width}, k = {config.k}, {config.epochs:g} epochs,",
            f"batch {config.batch_size}, Adam {config.lr:g}; plain and +FA share initialisation and batches.",
        ]
    )


def anchoring_markdown(results: "RealAnchoringResults") -> str:
    rows = []
    for run in results.runs:
        e = run.evaluation
        rows.append(
            [
                run.method + (" +FA" if run.anchored else ""),
                pct(_at(e.curve_taus, e.curve_dec, 0.5)),
                pct(_at(e.curve_taus, e.curve_dec, 0.7)),
                pct(e.gt_recovery_dec_90),
                fmt(e.mip_dec, 4),
                pct(_at(e.curve_taus, e.curve_enc, 0.5)),
                fmt(e.mip_enc, 4),
                fmt(e.anchored_mip_dec, 3),
                fmt(run.anchor_cosine_dec, 3),
                fmt(e.fvu, 3),
                fmt(e.l0, 3),
                pct(e.dead_fraction),
            ]
        )
    table = markdown_table(
        [
            "method",
            "dec GT@0.5",
            "dec GT@0.7",
            "dec GT@0.9",
            "dec MIP",
            "enc GT@0.5",
            "enc MIP",
            "anchored-class dec MIP",
            "anchor cos",
            "FVU",
            "L0",
            "dead",
        ],
        rows,
    )
    chance = results.runs[0].evaluation.mip_chance
    return (
        "\n\n".join(
            [
                "# real-anchoring: class-mean anchors on real sentence embeddings",
                _setup(results),
                f"Nearest-class-direction accuracy on held-out rows: {pct(results.nearest_class_mean_accuracy)} "
                f"(chance {pct(results.chance_accuracy)}). Random directions score MIP {fmt(chance, 3)} against the "
                "non-anchored class means (the floor a MIP is read against).",
                table,
                "## Claims",
                claims_table(results.claims),
                f"Time: {', '.join(f'{k} {v:.0f}s' for k, v in results.seconds.items())}.",
            ]
        )
        + "\n"
    )
