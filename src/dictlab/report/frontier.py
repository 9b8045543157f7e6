"""The L0 frontier: each evaluation metric against L0, one point per SAE, one line per architecture."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from dictlab.report.figures import PALETTE, save_figure

L0_KEY = "core.sparsity.l0"
"""The x axis: mean number of active latents per token, from the core evaluation."""


@dataclass(frozen=True)
class FrontierMetric:
    """One frontier plot: a flattened metric key (``<eval_type_id>.<category>.<metric>``) and how to show it."""

    key: str
    label: str
    higher_is_better: bool


FRONTIER_METRICS: tuple[FrontierMetric, ...] = (
    FrontierMetric("core.reconstruction_quality.explained_variance", "explained variance", True),
    FrontierMetric("core.reconstruction_quality.mse", "MSE", False),
    FrontierMetric("core.reconstruction_quality.cossim", "cosine similarity of x̂ and x", True),
    FrontierMetric("core.shrinkage.l2_ratio", "L2 ratio ‖x̂‖/‖x‖", True),
    FrontierMetric("core.shrinkage.relative_reconstruction_bias", "relative reconstruction bias", True),
    FrontierMetric("core.model_performance_preservation.ce_loss_score", "CE loss score", True),
    FrontierMetric("core.model_behavior_preservation.kl_div_score", "KL divergence score", True),
    FrontierMetric("core.misc_metrics.frac_alive", "fraction of latents alive", True),
    FrontierMetric("sparse_probing.sae.sae_top_1_test_accuracy", "1-sparse probing accuracy", True),
    FrontierMetric("sparse_probing.sae.sae_top_5_test_accuracy", "5-sparse probing accuracy", True),
    FrontierMetric("absorption_first_letter.mean.mean_absorption_fraction_score", "first-letter absorption", False),
    FrontierMetric("absorption_first_letter.mean.mean_full_absorption_score", "first-letter full absorption", False),
)
"""The metrics plotted when an evaluation provides them, in report order."""


@dataclass(frozen=True)
class FrontierPoint:
    """One SAE on the frontier: its name, the line it belongs to (its architecture) and its flattened metrics."""

    name: str
    architecture: str
    metrics: Mapping[str, float | int | None]


def _value(point: FrontierPoint, key: str) -> float | None:
    value = point.metrics.get(key)
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        return None
    return float(value)


def frontier_series(points: Sequence[FrontierPoint], key: str) -> dict[str, list[tuple[float, float, str]]]:
    """Architecture → [(L0, metric, SAE name)] sorted by L0, for the SAEs that have both values."""
    series: dict[str, list[tuple[float, float, str]]] = {}
    for point in points:
        l0, value = _value(point, L0_KEY), _value(point, key)
        if l0 is not None and value is not None:
            series.setdefault(point.architecture, []).append((l0, value, point.name))
    return {arch: sorted(values) for arch, values in sorted(series.items())}


def frontier_figure(points: Sequence[FrontierPoint], metric: FrontierMetric) -> Figure | None:
    """``metric`` against L0 (log scale), a line and markers per architecture; None when no SAE has both."""
    series = frontier_series(points, metric.key)
    if not series:
        return None
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, (architecture, values) in enumerate(series.items()):
        l0s, ys, _ = zip(*values, strict=True)
        ax.plot(l0s, ys, marker="o", color=PALETTE(i % 10), label=architecture)
    ax.set_xscale("log")
    ax.set_xlabel("L0 (active latents per token)")
    ax.set_ylabel(metric.label)
    ax.set_title(f"{metric.label} ({'higher' if metric.higher_is_better else 'lower'} is better)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def write_frontier_figures(points: Sequence[FrontierPoint], folder: str | Path) -> list[tuple[FrontierMetric, Path]]:
    """``folder/frontier-<metric>.png`` for every metric of :data:`FRONTIER_METRICS` some SAE has."""
    written = []
    for metric in FRONTIER_METRICS:
        fig = frontier_figure(points, metric)
        if fig is not None:
            name = "frontier-" + metric.key.split(".")[-1].replace("_", "-") + ".png"
            written.append((metric, save_figure(fig, Path(folder) / name)))
    return written
