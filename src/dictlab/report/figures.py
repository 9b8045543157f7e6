"""PNG figures from bench records, drawn with `matplotlib.figure.Figure` (no pyplot, no backend change).

`Figure.savefig` renders PNG through matplotlib's Agg canvas on its own, so these functions work headless
and leave whatever backend the caller (e.g. a notebook) chose untouched.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from dictlab.report.paper_tables import PAPER_TABLE1_SETTING
from dictlab.report.tables import run_label, sorted_records

DEFAULT_DPI = 120
PALETTE = matplotlib.colormaps["tab10"]


def _method_colours(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, ...]]:
    methods = list(dict.fromkeys(r["method"] for r in records))
    return {method: PALETTE(i % PALETTE.N) for i, method in enumerate(methods)}


def _float_list(record: Mapping[str, Any], field: str) -> list[float]:
    values = record.get(field)
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"run {run_label((record['method'], record['anchored']))}: '{field}' must be a list")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"run {run_label((record['method'], record['anchored']))}: '{field}' must hold numbers"
        ) from error


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figure path must end in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _require_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ordered = sorted_records(records)
    if not ordered:
        raise ValueError("records is empty: nothing to plot")
    return ordered


def plot_recovery_curves(records: Sequence[Mapping[str, Any]], path: str | Path, *, dpi: int = DEFAULT_DPI) -> Path:
    """GT recovery (%) vs τ: left panel encoder rows (`curve_enc`), right panel decoder columns (`curve_dec`).

    One line per run, colour per method, dashed for +FA; a vertical line marks τ = 0.95. Runs without a curve
    are skipped. Writes a PNG to `path` and returns it.
    """
    ordered = _require_records(records)
    colours = _method_colours(ordered)
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("curve_enc", "Encoder rows (W_enc)"), ("curve_dec", "Decoder columns (W_dec)"))
    for ax, (field, title) in zip(axes, panels, strict=True):
        drawn = 0
        for record in ordered:
            taus, values = _float_list(record, "curve_taus"), _float_list(record, field)
            if not taus or not values:
                continue
            if len(taus) != len(values):
                raise ValueError(
                    f"run {run_label((record['method'], record['anchored']))}: curve_taus has {len(taus)} "
                    f"points but {field} has {len(values)}"
                )
            ax.plot(
                taus,
                [100.0 * v for v in values],
                color=colours[record["method"]],
                linestyle="--" if record["anchored"] else "-",
                linewidth=1.6,
                label=run_label((record["method"], record["anchored"])),
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
    return _save(fig, path, dpi)


def plot_best_match_histograms(
    records: Sequence[Mapping[str, Any]], path: str | Path, *, dpi: int = DEFAULT_DPI, bins: int = 40
) -> Path:
    """Small multiples of best-match |cos| per GT feature: columns = methods, rows = plain / +FA.

    Each panel overlays the decoder histogram (`best_cos_dec`, solid) and the encoder one (`best_cos_enc`,
    lighter), with τ = 0.95 marked. Writes a PNG to `path` and returns it.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    ordered = _require_records(records)
    colours = _method_colours(ordered)
    methods = list(colours)
    variants = sorted({r["anchored"] for r in ordered})
    by_run = {(r["method"], r["anchored"]): r for r in ordered}
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
            dec = _float_list(record, "best_cos_dec") if record else []
            enc = _float_list(record, "best_cos_enc") if record else []
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
    return _save(fig, path, dpi)


def plot_training_trajectories(
    records: Sequence[Mapping[str, Any]], path: str | Path, *, dpi: int = DEFAULT_DPI
) -> Path:
    """Recovery during training: decoder MIP (left) and decoder GT@0.95 (right) against the training step.

    Reads each record's `trajectory` ({"step": [...], "mip_dec": [...], "gt_recovery_dec": [...]}); one line per
    run, colour per method, dashed for +FA; the left panel also marks the random-dictionary MIP (`mip_chance`).
    Writes a PNG to `path` and returns it.
    """
    ordered = _require_records(records)
    colours = _method_colours(ordered)
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    panels = (("mip_dec", "decoder MIP", 1.0), ("gt_recovery_dec", "decoder GT@0.95 (%)", 100.0))
    chances = [float(r["mip_chance"]) for r in ordered if isinstance(r.get("mip_chance"), int | float)]
    for ax, (field, label, scale) in zip(axes, panels, strict=True):
        for record in ordered:
            trajectory = {
                **(record.get("trajectory") or {}),
                "method": record["method"],
                "anchored": record["anchored"],
            }
            steps, values = _float_list(trajectory, "step"), _float_list(trajectory, field)
            if not steps or len(steps) != len(values):
                continue
            ax.plot(
                steps,
                [scale * v for v in values],
                color=colours[record["method"]],
                linestyle="--" if record["anchored"] else "-",
                linewidth=1.4,
                label=run_label((record["method"], record["anchored"])),
            )
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if chances:
        chance = axes[0].axhline(max(chances), color="0.3", linestyle=":", linewidth=1.2)
        axes[0].legend([chance], ["random-dictionary MIP"], loc="lower right", fontsize="small")
    axes[0].set_title("Decoder MIP during training")
    axes[1].set_title("Decoder GT recovery during training")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="run (dashed = +FA)")
    return _save(fig, path, dpi)
