"""PNG figures of a bench: GT recovery against τ, best-match histograms, recovery during training."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from dictlab.metrics import Evaluation
from dictlab.report.figures import DEFAULT_DPI, PALETTE, save_figure
from dictlab.reproductions.bench.records import BenchRecord
from dictlab.reproductions.bench.tables import method_sort_key, run_label, sorted_records
from dictlab.reproductions.expected import PAPER_TABLE1_SETTING


@dataclass(frozen=True)
class RecoveryCurves:
    """GT recovery against τ of one run, for :func:`plot_recovery_curves`."""

    method: str
    anchored: bool
    taus: Sequence[float]
    encoder: Sequence[float]
    """Share of GT features matched by an encoder row at each τ."""
    decoder: Sequence[float]
    """Share of GT features matched by a decoder row at each τ."""

    @classmethod
    def of(cls, method: str, anchored: bool, evaluation: Evaluation) -> "RecoveryCurves":
        """The curves stored in an :class:`~dictlab.metrics.Evaluation` (or a bench record)."""
        return cls(method, anchored, evaluation.curve_taus, evaluation.curve_enc, evaluation.curve_dec)


def _method_colours(methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    unique = list(dict.fromkeys(methods))
    return {method: PALETTE(i % PALETTE.N) for i, method in enumerate(unique)}


def _require_records(records: Sequence[BenchRecord]) -> list[BenchRecord]:
    ordered = sorted_records(records)
    if not ordered:
        raise ValueError("records is empty: nothing to plot")
    return ordered


def plot_recovery_curves(
    runs: Sequence[BenchRecord | RecoveryCurves], path: str | Path, *, dpi: int = DEFAULT_DPI
) -> Path:
    """GT recovery (%) vs τ: left panel encoder rows, right panel decoder columns.

    One line per run, colour per method, dashed for +FA; a vertical line marks τ = 0.95. Runs without a curve
    are skipped. Writes a PNG to ``path`` and returns it.
    """
    curves = [r if isinstance(r, RecoveryCurves) else RecoveryCurves.of(r.method, r.anchored, r) for r in runs]
    if not curves:
        raise ValueError("records is empty: nothing to plot")
    curves.sort(key=lambda c: (method_sort_key(c.method), c.anchored))
    colours = _method_colours([c.method for c in curves])
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("encoder", "Encoder rows (W_enc)"), ("decoder", "Decoder columns (W_dec)"))
    for ax, (side, title) in zip(axes, panels, strict=True):
        drawn = 0
        for curve in curves:
            values = curve.encoder if side == "encoder" else curve.decoder
            if not curve.taus or not values:
                continue
            if len(curve.taus) != len(values):
                raise ValueError(
                    f"run {run_label((curve.method, curve.anchored))}: {len(curve.taus)} thresholds but "
                    f"{len(values)} {side} recovery values"
                )
            ax.plot(
                curve.taus,
                [100.0 * v for v in values],
                color=colours[curve.method],
                linestyle="--" if curve.anchored else "-",
                linewidth=1.6,
                label=run_label((curve.method, curve.anchored)),
            )
            drawn += 1
        ax.axvline(PAPER_TABLE1_SETTING.tau, color="0.3", linestyle=":", linewidth=1.2, label="τ = 0.95")
        if drawn == 0:
            ax.text(0.5, 0.5, "no curves recorded", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(f"GT recovery vs τ: {title}")
        ax.set_xlabel("similarity threshold τ")
        ax.set_ylim(-2.0, 102.0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("GT features recovered (%)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="run (dashed = +FA)")
    return save_figure(fig, path, dpi)


def plot_best_match_histograms(
    records: Sequence[BenchRecord], path: str | Path, *, dpi: int = DEFAULT_DPI, bins: int = 40
) -> Path:
    """Small multiples of best-match |cos| per GT feature: columns = methods, rows = plain / +FA.

    Each panel overlays the decoder histogram (``best_cos_dec``, solid) and the encoder one (``best_cos_enc``,
    lighter), with τ = 0.95 marked. Writes a PNG to ``path`` and returns it.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    ordered = _require_records(records)
    colours = _method_colours([r.method for r in ordered])
    methods = list(colours)
    variants = sorted({r.anchored for r in ordered})
    by_run = {(r.method, r.anchored): r for r in ordered}
    n_rows, n_cols = len(variants), len(methods)
    fig = Figure(figsize=(2.5 * n_cols + 0.6, 2.3 * n_rows + 0.9), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    edges = [i / bins for i in range(bins + 1)]
    legend_drawn = False
    for row, anchored in enumerate(variants):
        for col, method in enumerate(methods):
            ax = axes[row][col]
            ax.set_title(run_label((method, anchored)), fontsize="medium")
            record = by_run.get((method, anchored))
            dec = record.best_cos_dec if record else []
            enc = record.best_cos_enc if record else []
            if not dec and not enc:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
            colour = colours[method]
            if enc:
                ax.hist(enc, bins=edges, color=colour, alpha=0.3, histtype="stepfilled", label="encoder")
            if dec:
                ax.hist(dec, bins=edges, color=colour, alpha=0.85, histtype="step", linewidth=1.6, label="decoder")
            ax.axvline(PAPER_TABLE1_SETTING.tau, color="0.3", linestyle=":", linewidth=1.0)
            ax.set_xlim(0.0, 1.0)
            ax.set_xticks([0.0, 0.5, 1.0])
            if row == n_rows - 1:
                ax.set_xlabel("best-match |cos|")
            if col == 0:
                ax.set_ylabel("# GT features")
            if (dec or enc) and not legend_drawn:
                ax.legend(fontsize="x-small", loc="upper left")
                legend_drawn = True
    fig.suptitle("Best-match |cos| per non-anchored GT feature (decoder solid, encoder light; dotted: τ = 0.95)")
    return save_figure(fig, path, dpi)


def plot_training_trajectories(records: Sequence[BenchRecord], path: str | Path, *, dpi: int = DEFAULT_DPI) -> Path:
    """Recovery during training: decoder MIP (left) and decoder GT@0.95 (right) against the training step.

    One line per run from its ``trajectory``, colour per method, dashed for +FA; the left panel also marks the
    random-dictionary MIP. Writes a PNG to ``path`` and returns it.
    """
    ordered = _require_records(records)
    colours = _method_colours([r.method for r in ordered])
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    panels = (("mip_dec", "decoder MIP", 1.0), ("gt_recovery_dec", "decoder GT@0.95 (%)", 100.0))
    for ax, (field, label, scale) in zip(axes, panels, strict=True):
        for record in ordered:
            steps = record.trajectory.step
            values = record.trajectory.mip_dec if field == "mip_dec" else record.trajectory.gt_recovery_dec
            if not steps or len(steps) != len(values):
                continue
            ax.plot(
                steps,
                [scale * v for v in values],
                color=colours[record.method],
                linestyle="--" if record.anchored else "-",
                linewidth=1.4,
                label=run_label((record.method, record.anchored)),
            )
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    chance = axes[0].axhline(max(r.mip_chance for r in ordered), color="0.3", linestyle=":", linewidth=1.2)
    axes[0].legend([chance], ["random-dictionary MIP"], loc="lower right", fontsize="small")
    axes[0].set_title("Decoder MIP during training")
    axes[1].set_title("Decoder GT recovery during training")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="run (dashed = +FA)")
    return save_figure(fig, path, dpi)
