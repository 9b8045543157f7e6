"""Figures for `dictlab diagnose`: the pairwise hull plot and violation histograms (matplotlib Figure, no pyplot)."""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dictlab.diagnostics.diagnose import Diagnostics
from dictlab.diagnostics.pairwise import PairVerdict
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.report.figures import DEFAULT_DPI, PALETTE, save_figure

MAX_SCATTER = 4000


def normalised_codes(codes: SparseCodes, k: int) -> np.ndarray:
    """ã_nk = (a_nk − ā_k)/(ā_k − min_n a_nk) for every point: [N] (≥ −1; −1 where min is attained)."""
    a = np.zeros(codes.n_points)
    mask = codes.cols == k
    a[codes.rows[mask].numpy()] = codes.values[mask].double().numpy()
    mean, low = a.mean(), a.min()
    return (a - mean) / (mean - low) if mean > low else np.zeros_like(a)


def pair_panel(ax: Axes, codes: SparseCodes, verdict: PairVerdict, rng: np.random.Generator) -> None:
    """Draw one pair on ``ax``: normalised codes (ã_j, ã_k), both 1-D hulls and the two −c points."""
    j, k, c = verdict.j, verdict.k, verdict.cosine
    aj, ak = normalised_codes(codes, j), normalised_codes(codes, k)
    shown = np.flatnonzero((aj > -1) | (ak > -1))
    if len(shown) > MAX_SCATTER:
        shown = rng.choice(shown, MAX_SCATTER, replace=False)
    ax.scatter(aj[shown], ak[shown], s=4, alpha=0.35, color="0.45", linewidths=0, label="points")
    silent_j = np.isclose(aj, -1)
    silent_k = np.isclose(ak, -1)
    # Hull of k's normalised codes over j's silent set lies on the line ã_j = −1, and vice versa.
    segments = (
        (silent_j, lambda lo, hi: ([-1, -1], [lo, hi]), ak, f"hull of ã_{k} on Z_{j}", PALETTE(0)),
        (silent_k, lambda lo, hi: ([lo, hi], [-1, -1]), aj, f"hull of ã_{j} on Z_{k}", PALETTE(1)),
    )
    for silent, where, values, label, colour in segments:
        if silent.any():
            xs, ys = where(values[silent].min(), values[silent].max())
            # A hull collapsed to one point (a nested pair) is drawn as a square so it stays visible.
            ax.plot(xs, ys, color=colour, lw=4, alpha=0.8, marker="s", markersize=7, label=label)
    ax.scatter([-1, -c], [-c, -1], marker="*", s=140, color="crimson", zorder=5, label="−c point")
    verdict_text = "passes" if verdict.passes else ("nested: fails" if verdict.nested else "fails")
    ax.set_title(
        f"atoms {j}, {k}: c = {c:.3f}, {verdict_text}\n"
        f"margins {verdict.margin_k_given_j:.2g} / {verdict.margin_j_given_k:.2g}",
        fontsize=9,
    )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel(f"ã_{j} (active on {verdict.support_j} points)")
    ax.set_ylabel(f"ã_{k} (active on {verdict.support_k} points)")
    ax.legend(fontsize=7, loc="upper right")


def plot_pairwise_hulls(
    diagnostics: Diagnostics,
    path: str | Path,
    *,
    n_pairs: int = 4,
    pairs: Sequence[PairVerdict] | None = None,
    dpi: int = DEFAULT_DPI,
) -> Path:
    """The paper-style pairwise plot for the worst pairs: normalised codes, the two hulls and the −c points."""
    verdicts = list(pairs if pairs is not None else diagnostics.report.pairwise.worst[:n_pairs])
    if not verdicts:
        raise ValueError("no pair to plot: the dictionary has fewer than two live atoms")
    cols = min(len(verdicts), 2)
    rows = math.ceil(len(verdicts) / cols)
    fig = Figure(figsize=(5.2 * cols, 4.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    rng = np.random.default_rng(0)
    for ax, verdict in zip(axes, verdicts, strict=False):
        pair_panel(ax, diagnostics.codes, verdict, rng)
    for ax in axes[len(verdicts) :]:
        ax.set_visible(False)
    fig.suptitle("Pairwise hull condition: −c must lie in both hulls (1-D form)")
    return save_figure(fig, path, dpi)


def _log_hist(ax, values: torch.Tensor, title: str, floor: float = 1e-16) -> None:
    values = values.detach().double().flatten()
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.hist(np.log10(values.clamp_min(floor).numpy()), bins=50, color=PALETTE(0))
        ax.set_xlabel("log10 value")
    ax.set_title(title, fontsize=9)


def plot_violation_histograms(diagnostics: Diagnostics, path: str | Path, *, dpi: int = DEFAULT_DPI) -> Path:
    """Histograms of the C1/C2 violations, the pairwise margins, ‖r‖/λ and the split pressure."""
    arrays = diagnostics.conditions
    fig = Figure(figsize=(13, 7), layout="constrained")
    axes = fig.subplots(2, 3).flatten()
    _log_hist(axes[0], (arrays.g_active - 1).abs(), "C1 on the support: |w_kᵀr_n/λ − 1|")
    _log_hist(axes[1], arrays.c1_inactive[arrays.c1_inactive > 0], "C1 off the support: (w_kᵀr_n/λ − 1)_+ > 0")
    _log_hist(axes[2], arrays.c2, "C2: ‖(I − w_kw_kᵀ)Rᵀα_k‖/(λ‖α_k‖₁)")
    margins = diagnostics.pairwise.extra["exception_margin"]
    margins = margins[torch.isfinite(margins)]
    ax = axes[3]
    if margins.numel():
        ax.hist(margins.clamp(-1, 10).numpy(), bins=50, color=PALETTE(1))
        ax.axvline(0, color="crimson", lw=1)
    ax.set_title("1-D hull margins of co-active pairs (< 0 fails)", fontsize=9)
    ax.set_xlabel("margin (clipped to [−1, 10])")
    ax = axes[4]
    ratio = diagnostics.arrays["residual_norm_over_lambda"].numpy()
    ax.hist(ratio, bins=50, color=PALETTE(2))
    ax.axvline(1, color="crimson", lw=1)
    ax.set_title("‖r_n‖/λ (> 1: a new atom would lower the loss)", fontsize=9)
    _log_hist(axes[5], diagnostics.arrays["split_pressure"], "split pressure SP_k/(λ‖α_k‖₁)")
    problem = diagnostics.report.problem
    fig.suptitle(f"Optimality diagnostics at λ = {problem.lam:.4g} ({problem.codes} codes, {problem.n_points} points)")
    return save_figure(fig, path, dpi)
