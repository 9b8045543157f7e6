"""Claims, results.md and figure of ``dictlab reproduce wide-limit``."""

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from dictlab.report.figures import PALETTE, save_figure
from dictlab.report.markdown import markdown_table
from dictlab.reproductions.claims import Claim, claim, claims_table
from dictlab.reproductions.expected import INDEPENDENT_WIDE_LIMIT as EXPECTED
from dictlab.reproductions.expected import INDEPENDENT_WIDE_LIMIT_P_INFINITY, INDEPENDENT_WIDE_LIMIT_RAYS
from dictlab.reproductions.synthetic import SMALL

RAYS_OUTSIDE, RAYS_TOTAL = INDEPENDENT_WIDE_LIMIT_RAYS

if TYPE_CHECKING:
    from dictlab.reproductions.wide_limit.run import SweepResult, WideLimitResults


def wide_claims(sweeps: "list[SweepResult]") -> list[Claim]:
    claims = [
        claim(
            "The convex bound is never crossed",
            "P_∞ ≤ P_K for every K, seed and data set (docs/optimality.md §8)",
            "; ".join(
                f"{s.sweep.name}: P_∞ = {s.p_infinity:.4f}, min loss − P_∞ = {min(r.gap for r in s.runs):.4g}"
                for s in sweeps
            ),
            all(s.bound_holds for s in sweeps),
        ),
        claim(
            "The gap to P_∞ shrinks with width",
            f"strictly decreasing best-of-seeds gap (the independent solver: {EXPECTED[min(EXPECTED)].gap} → "
            f"{EXPECTED[max(EXPECTED)].gap} for K = {min(EXPECTED)} → {max(EXPECTED)})",
            "; ".join(f"{s.sweep.name}: " + " → ".join(f"{b.gap:.3g}" for b in s.best) for s in sweeps),
            all(s.gap_decreasing for s in sweeps),
        ),
        claim(
            "Splitting stops at one atom per ray: L0 → limit, max‖r‖/λ → 1, atoms align with data rays",
            "L0 → share of points outside the λ-ball; max‖r‖/λ → 1; alignment → 1 (docs/optimality.md §8)",
            "; ".join(
                f"{s.sweep.name} at K = {s.best[-1].width}: L0 {s.best[-1].mean_l0:.3f} (limit "
                f"{s.limit_mean_l0:.3f}), max‖r‖/λ {s.best[-1].max_residual_over_lambda:.3f}, alignment "
                f"{s.best[-1].alignment:.4f}, live atoms {s.best[-1].live_atoms} of {s.n_rays} rays"
                for s in sweeps
            ),
            None,
        ),
    ]
    small = next((s for s in sweeps if s.sweep == SMALL or s.sweep.name == SMALL.name), None)
    if small is not None:
        claims.append(
            claim(
                "The independent solver's numbers (D = 5, N = 40)",
                f"P_∞ = {INDEPENDENT_WIDE_LIMIT_P_INFINITY}, {RAYS_OUTSIDE} of {RAYS_TOTAL} points outside the "
                "λ-ball; its gaps",
                f"P_∞ = {small.p_infinity:.4f}, {small.n_rays} of {small.sweep.n_points} outside; gaps "
                + ", ".join(
                    f"K={b.width}: {b.gap:.3f} (independent {EXPECTED[b.width].gap})"
                    for b in small.best
                    if b.width in EXPECTED
                )
                + ". Its data generator is not specified exactly, so only the pattern is comparable.",
                None,
            )
        )
    return claims


def wide_markdown(r: "WideLimitResults") -> str:
    lines = [
        "# Width sweep against the convex wide-dictionary bound (docs/optimality.md §8)",
        "",
        f"λ = {r.config.lam}, no bias, joint solver from random unit atoms (tol {r.config.tol:g}), seed "
        f"{r.config.seed}. Data: orthogonal nonnegative sparse features, each active with probability p, "
        "magnitudes U(low, high), Gaussian noise. Alignment = mean over live atoms of the largest cosine to a data "
        "ray x_n/‖x_n‖ of a point outside the λ-ball (→ 1 as splitting stops).",
        "",
        "## Theory vs measurement",
        "",
        claims_table(r.claims),
    ]
    headers = ["K", "loss", "gap to P_∞", "mean L0", "max‖r‖/λ", "live atoms", "alignment", "seeds converged"]
    for s in r.sweeps:
        sw = s.sweep
        rows = []
        for b in s.best:
            runs = [x for x in s.runs if x.width == b.width]
            row = [
                b.width,
                f"{b.loss:.4f}",
                f"{b.gap:.4f}",
                f"{b.mean_l0:.2f}",
                f"{b.max_residual_over_lambda:.2f}",
                b.live_atoms,
                f"{b.alignment:.4f}",
                f"{sum(x.converged for x in runs)}/{len(runs)}",
            ]
            if sw.name == SMALL.name and b.width in EXPECTED:
                e = EXPECTED[b.width]
                row += [f"{e[0]} / {e[1]} / {e[2]} / {e[3]} / {e[4]}"]
            rows.append(row)
        extra = ["independent solver: loss / gap / L0 / max‖r‖/λ / live"] if sw.name == SMALL.name else []
        lines += [
            "",
            f"## {sw.name}: {sw.n_features} features, p = {sw.p_active}, magnitudes U{sw.magnitude}, noise "
            f"{sw.noise}; best of {sw.seeds} seed(s)",
            "",
            f"P_∞ = {s.p_infinity:.4f} (duality gap {s.bound_duality_gap:.1e}); {s.n_rays} of {sw.n_points} points "
            f"outside the λ-ball (limit mean L0 {s.limit_mean_l0:.3f}). Bound holds for every run: "
            f"{'yes' if s.bound_holds else 'NO'}; gap strictly decreasing: {'yes' if s.gap_decreasing else 'NO'}.",
            "",
            markdown_table(headers + extra, rows),
        ]
    lines += [
        "",
        "Figure: figures/width_sweep.png (gap vs K on log axes, mean L0, max‖r‖/λ and alignment vs K).",
        "",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in r.seconds.items()),
    ]
    return "\n".join(lines)


def plot_width_sweep(r: "WideLimitResults", path: Path) -> Path:
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2).flatten()
    panels = [
        ("gap", "gap to the convex bound (P_K − P_inf)", True),
        ("mean_l0", "mean L0", False),
        ("max_residual_over_lambda", "max‖r‖/λ", False),
        ("alignment", "alignment with data rays", False),
    ]
    for i, s in enumerate(r.sweeps):
        colour = PALETTE(i)
        for ax, (field, label, log) in zip(axes, panels, strict=True):
            ax.scatter([x.width for x in s.runs], [getattr(x, field) for x in s.runs], s=12, alpha=0.4, color=colour)
            ax.plot(
                [b.width for b in s.best], [getattr(b, field) for b in s.best], "o-", color=colour, label=s.sweep.name
            )
            ax.set_xscale("log", base=2)
            if log:
                ax.set_yscale("log")
            ax.set_xlabel("K (atoms)")
            ax.set_ylabel(label)
        axes[1].axhline(s.limit_mean_l0, color=colour, ls="--", lw=1)
    axes[2].axhline(1.0, color="crimson", ls="--", lw=1, label="limit (1)")
    axes[3].axhline(1.0, color="crimson", ls="--", lw=1)
    small = [s for s in r.sweeps if s.sweep.name == SMALL.name]
    if small:
        widths = sorted(EXPECTED)
        axes[0].plot(widths, [EXPECTED[w].gap for w in widths], "x:", color="0.3", label="independent solver")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[1].set_title("dashed: limit (share of points outside the λ-ball)", fontsize=9)
    fig.suptitle(f"(P_K) vs the convex wide limit at λ = {r.config.lam} (points: seeds; lines: best of seeds)")
    return save_figure(fig, path)
