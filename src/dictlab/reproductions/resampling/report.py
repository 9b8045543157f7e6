"""Claims, results.md and figure of ``dictlab reproduce resampling``."""

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from dictlab.report.figures import save_figure
from dictlab.report.markdown import markdown_table
from dictlab.reproductions.claims import Claim, claim, claims_table

if TYPE_CHECKING:
    from dictlab.reproductions.resampling.run import ResamplingResults


def resampling_claims(results: "ResamplingResults") -> list[Claim]:
    standard, resampling = results.arms
    return [
        claim(
            "resampling revives dead latents",
            "dead fraction lower with resampling",
            f"held-out dead {standard.heldout['dead_fraction']:.1%} → {resampling.heldout['dead_fraction']:.1%}; "
            f"{resampling.resampled} latents resampled",
            resampling.heldout["dead_fraction"] < standard.heldout["dead_fraction"],
        ),
        claim(
            "resampling ends at a lower loss (paper Fig. 7: ≈ 1.3 vs 1.7)",
            "final loss lower with resampling",
            f"final training loss {standard.loss[-1]:.2f} → {resampling.loss[-1]:.2f}; held-out FVU "
            f"{standard.heldout['fvu']:.3f} → {resampling.heldout['fvu']:.3f}",
            resampling.loss[-1] < standard.loss[-1],
        ),
    ]


def resampling_markdown(results: "ResamplingResults") -> str:
    c = results.config
    rows = [
        [
            a.arm,
            f"{a.loss[-1]:.3f}",
            f"{a.heldout['fvu']:.4f}",
            f"{a.heldout['l0']:.1f}",
            f"{a.heldout['dead_fraction']:.1%}",
            a.resampled,
        ]
        for a in results.arms
    ]
    return (
        "\n\n".join(
            [
                "# resampling: dead-latent resampling on real LM activations",
                f"Store `{results.store}` ({c.model} {c.module}, width {results.width}); two ReLU SAEs with "
                f"{results.d_sae} latents, L1 coefficient {c.sparsity_coefficient}, Adam {c.lr:g}, "
                f"batch {c.batch_size}, "
                f"{c.steps} steps, from one initialisation on the same batches; the resampling arm resamples latents "
                f"silent for {c.dead_window_samples:,} samples every {c.resample_every} steps during the first "
                f"{c.resample_stop_frac:.0%} of training. Activations normalised to E‖x‖² = d"
                + (f"; rows over {c.max_norm_ratio:g}× the RMS norm dropped." if c.max_norm_ratio else "."),
                markdown_table(["arm", "final train loss", "held-out FVU", "L0", "dead", "resampled"], rows),
                "## Claims",
                claims_table(results.claims),
            ]
        )
        + "\n"
    )


def plot_resampling(results: "ResamplingResults", path: Path) -> Path:
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    for arm in results.arms:
        left.plot(arm.steps, arm.loss, label=arm.arm)
        right.plot(arm.steps, [100 * d for d in arm.dead_fraction], label=arm.arm)
    left.set(xlabel="step", ylabel="training loss (squared error + L1)", title="Loss (cf. paper Fig. 7)")
    right.set(xlabel="step", ylabel="dead latents (%)", title="Dead fraction")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)
