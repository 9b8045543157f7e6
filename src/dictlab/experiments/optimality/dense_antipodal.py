"""``dictlab reproduce dense-antipodal``: a dense signed direction becomes an antipodal pair (ref. §6, §10 Exp 3).

With a bias and a spare atom, replacing one dense atom by (u, −u) split at the median m of its projection s keeps
the reconstruction and lowers the L1 cost from Σ(s − min s) to Σ|s − m|. So the solver should end with an antipodal
pair whose split point b·u sits near the median (not the mean), each half active on about half the points.
"""

import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from dictlab.diagnostics.problem import L1Dictionary
from dictlab.diagnostics.solver import SolverResult, learn_dictionary, random_atoms
from dictlab.experiments.optimality.common import (
    Claim,
    Echo,
    claim,
    claims_table,
    finish,
    markdown_table,
    orthonormal_rows,
    pct,
    uniform,
)
from dictlab.report.figures import DEFAULT_DPI, PALETTE, _save
from dictlab.stopwatch import Stopwatch

SKEWED_EXPECTED = {0.1: (0.381, 0.451, 0.450, 250.7, 284.1, 0.61), 0.01: (0.425, 0.473, 0.515, 27.6, 36.1, 0.87)}
"""ref. §10 Exp 3 skewed table: λ → (b·u, active +, active −, pair loss, one atom + bias loss, one-atom active)."""


class DenseAntipodalConfig(BaseModel):
    """Exp 3 of reference §10: normal and skewed dense directions, with a bias."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, description="Seed of the data and the random initialisations.")
    dim: int = Field(8, ge=2, description="Data dimension D.")
    n_points: int = Field(4000, gt=0, description="Data points N.")
    noise: float = Field(0.01, ge=0, description="Std of isotropic Gaussian noise.")
    lam: float = Field(0.1, gt=0, description="λ of the normal case (ref. §10 does not state its value).")
    shift: float = Field(0.5, description="Normal case: s ~ N(0, 1) + shift along u.")
    sparse_p: float = Field(0.3, ge=0, le=1, description="Normal case: firing probability of the sparse feature v ⊥ u.")
    sparse_magnitude: tuple[float, float] = Field((0.5, 1.5), description="Sparse feature magnitudes ~ U(low, high).")
    random_widths: tuple[int, ...] = Field((3, 4), description="Atoms of the random-init runs (normal case).")
    random_seeds: int = Field(2, ge=0, description="Random initialisations per width.")
    skew_offset: float = Field(0.3, description="Skewed case: s ~ Exp(1) − offset along u (dense direction only).")
    skew_lams: tuple[float, ...] = Field((0.1, 0.01), description="λ values of the skewed case.")
    antipodal_cosine: float = Field(-0.99, description="A pair is antipodal below this cosine.")
    tol: float = Field(1e-9, gt=0, description="Solver stopping tolerance on C2/C3.")
    max_iter: int = Field(5000, gt=0, description="Solver sweep limit.")

    @classmethod
    def quick(cls, seed: int = 0) -> "DenseAntipodalConfig":
        """N = 1500, one random init, λ = 0.1 only for the skewed case (a few seconds)."""
        return cls(seed=seed, n_points=1500, random_widths=(3,), random_seeds=1, skew_lams=(0.1,))


class PairRun(BaseModel):
    """The most anti-aligned pair of a converged dictionary, read along the dense direction u."""

    label: str
    lam: float
    n_atoms: int
    loss: float
    converged: bool
    iterations: int
    seconds: float
    plus_atom: int = Field(description="Pair atom with cos(w, u) > 0.")
    minus_atom: int
    cosine: float = Field(description="cos(plus atom, minus atom).")
    plus_cos_u: float
    antipodal: bool
    active_plus: float = Field(description="Share of points where the plus atom is active.")
    active_minus: float
    predicted_active_plus: float = Field(description="C1 prediction: share with s > b·u + λ.")
    predicted_active_minus: float = Field(description="C1 prediction: share with s < b·u − λ.")
    split: float = Field(description="b·u, the split point.")
    pair_l1: float = Field(description="Σ_n (a_n,plus + a_n,minus).")


class NormalCase(BaseModel):
    median: float = Field(description="Median of s.")
    mean: float
    l1_pair_exact: float = Field(description="Σ|s − median|: L1 cost of the exact antipodal pair.")
    l1_one_atom_exact: float = Field(description="Σ(s − min s): L1 cost of one atom + bias reconstructing s exactly.")
    antipodal_init: PairRun
    random_inits: list[PairRun]


class SkewedRow(BaseModel):
    lam: float
    median: float
    mean: float
    pair: PairRun
    one_atom_loss: float
    one_atom_active: float
    one_atom_split: float
    one_atom_converged: bool


class DenseAntipodalResults(BaseModel):
    config: DenseAntipodalConfig
    normal: NormalCase
    skewed: list[SkewedRow]
    claims: list[Claim]
    seconds: dict[str, float]


def _solve(
    X: Tensor, lam: float, init: L1Dictionary | Tensor, config: DenseAntipodalConfig
) -> tuple[SolverResult, float]:
    started = time.perf_counter()
    result = learn_dictionary(X, lam, init, bias=True, tol=config.tol, max_iter=config.max_iter)
    return result, round(time.perf_counter() - started, 2)


def pair_run(
    label: str, result: SolverResult, seconds: float, s: Tensor, u: Tensor, lam: float, threshold: float
) -> PairRun:
    """Read the most anti-aligned pair of live atoms of ``result`` along u."""
    W, A = result.dictionary.atoms, result.codes
    live = torch.nonzero(A.sum(dim=0) > 0).flatten()
    C = W[live] @ W[live].T
    C.fill_diagonal_(torch.inf)
    i, j = divmod(int(C.argmin()), len(live))
    a, b = int(live[i]), int(live[j])
    plus, minus = (a, b) if W[a] @ u >= W[b] @ u else (b, a)
    assert result.dictionary.bias is not None
    split = float(result.dictionary.bias @ u)
    cosine = float(W[plus] @ W[minus])
    return PairRun(
        label=label,
        lam=lam,
        n_atoms=len(W),
        loss=result.loss,
        converged=result.converged,
        iterations=result.iterations,
        seconds=seconds,
        plus_atom=plus,
        minus_atom=minus,
        cosine=cosine,
        plus_cos_u=float(W[plus] @ u),
        antipodal=cosine < threshold,
        active_plus=float((A[:, plus] > 0).double().mean()),
        active_minus=float((A[:, minus] > 0).double().mean()),
        predicted_active_plus=float((s > split + lam).double().mean()),
        predicted_active_minus=float((s < split - lam).double().mean()),
        split=split,
        pair_l1=float(A[:, plus].sum() + A[:, minus].sum()),
    )


def run_dense_antipodal(config: DenseAntipodalConfig, out: Path, echo: Echo = print) -> DenseAntipodalResults:
    """Normal and skewed cases; writes ``results.json``, ``results.md`` and ``figures/`` under ``out``."""
    clock = Stopwatch()
    g = torch.Generator().manual_seed(config.seed)
    N, D = config.n_points, config.dim
    u, v = orthonormal_rows(2, D, g)
    threshold = config.antipodal_cosine

    s = torch.randn(N, generator=g, dtype=torch.float64) + config.shift
    sparse = (torch.rand(N, generator=g, dtype=torch.float64) < config.sparse_p) * uniform(
        N, *config.sparse_magnitude, g
    )
    X = s[:, None] * u + sparse[:, None] * v + config.noise * torch.randn(N, D, generator=g, dtype=torch.float64)
    init = L1Dictionary(torch.stack([u, -u, v]), X.mean(dim=0))
    result, seconds = _solve(X, config.lam, init, config)
    antipodal = pair_run("antipodal init (u, −u, v)", result, seconds, s, u, config.lam, threshold)
    randoms = []
    for width in config.random_widths:
        for k in range(config.random_seeds):
            atoms = random_atoms(width, D, torch.Generator().manual_seed(config.seed * 1000 + 10 * width + k))
            result, seconds = _solve(X, config.lam, atoms, config)
            randoms.append(pair_run(f"random init, K = {width}, #{k}", result, seconds, s, u, config.lam, threshold))
    median = float(s.median())
    normal = NormalCase(
        median=median,
        mean=float(s.mean()),
        l1_pair_exact=float((s - median).abs().sum()),
        l1_one_atom_exact=float((s - s.min()).sum()),
        antipodal_init=antipodal,
        random_inits=randoms,
    )
    clock.lap("normal")
    echo(f"dense-antipodal: normal case done ({clock.seconds['normal']:.1f}s)")

    t = -torch.log(torch.rand(N, generator=g, dtype=torch.float64)) - config.skew_offset
    Xs = t[:, None] * u + config.noise * torch.randn(N, D, generator=g, dtype=torch.float64)
    skewed = []
    for lam in config.skew_lams:
        result, seconds = _solve(Xs, lam, L1Dictionary(torch.stack([u, -u]), Xs.mean(dim=0)), config)
        pair = pair_run(f"skewed, λ = {lam:g}", result, seconds, t, u, lam, threshold)
        one, _ = _solve(Xs, lam, L1Dictionary(u[None], Xs.mean(dim=0)), config)
        assert one.dictionary.bias is not None
        skewed.append(
            SkewedRow(
                lam=lam,
                median=float(t.median()),
                mean=float(t.mean()),
                pair=pair,
                one_atom_loss=one.loss,
                one_atom_active=float((one.codes[:, 0] > 0).double().mean()),
                one_atom_split=float(one.dictionary.bias @ u),
                one_atom_converged=one.converged,
            )
        )
        clock.lap(f"skewed λ={lam:g}")
    results = DenseAntipodalResults(config=config, normal=normal, skewed=skewed, claims=[], seconds=clock.seconds)
    results.claims = dense_claims(results)
    plot_split_histograms(results, s, t, out / "figures" / "split_histograms.png")
    finish("dense-antipodal", out, results, dense_markdown, clock, echo)
    return results


def dense_claims(r: DenseAntipodalResults) -> list[Claim]:
    n, p = r.normal, r.normal.antipodal_init
    claims = [
        claim(
            "From an antipodal init the pair stays antipodal",
            "cos = −1.000 (ref. §10 Exp 3)",
            f"cos {p.cosine:.5f}; cos(plus atom, u) {p.plus_cos_u:.5f}; converged {p.converged}",
            p.antipodal,
        ),
        claim(
            "The split point sits at the median of s",
            "b·u ≈ median (ref. §10: 0.479 vs 0.484); within 0.05",
            f"b·u {p.split:.3f} vs median {n.median:.3f} (mean {n.mean:.3f}); Δ {p.split - n.median:+.3f}",
            abs(p.split - n.median) <= 0.05,
        ),
        claim(
            "Each half is active on about half the points",
            f"ref. §10: 48.3 % / 48.1 % (λ unstated); C1 at λ = {p.lam:g}: {pct(p.predicted_active_plus)} / "
            f"{pct(p.predicted_active_minus)} (points beyond b·u ± λ); within 2 points of C1",
            f"{pct(p.active_plus)} / {pct(p.active_minus)}",
            abs(p.active_plus - p.predicted_active_plus) <= 0.02
            and abs(p.active_minus - p.predicted_active_minus) <= 0.02,
        ),
        claim(
            "L1 cost: antipodal pair vs one atom + bias",
            "Σ|s − med| = 3198 vs Σ(s − min s) = 12968 (ref. §10, N ≈ 4000)",
            f"{n.l1_pair_exact:.0f} vs {n.l1_one_atom_exact:.0f} (N = {r.config.n_points}); the converged pair's "
            f"codes sum to {p.pair_l1:.0f} (shrunk by λ)",
            n.l1_pair_exact < n.l1_one_atom_exact,
        ),
    ]
    if n.random_inits:
        claims.append(
            claim(
                "From random inits the solver also ends with an antipodal pair",
                f"an atom pair with cos < {r.config.antipodal_cosine} along u, split near the median",
                "; ".join(
                    f"{x.label}: cos {x.cosine:.4f}, cos(plus, u) {x.plus_cos_u:.3f}, b·u {x.split:.3f}, "
                    f"active {pct(x.active_plus)} / {pct(x.active_minus)}"
                    for x in n.random_inits
                ),
                all(x.antipodal for x in n.random_inits),
            )
        )
    for row in r.skewed:
        e = SKEWED_EXPECTED.get(row.lam)
        claims += [
            claim(
                f"Skewed s, λ = {row.lam:g}: the split tracks the median, not the mean",
                "|b·u − median| < |b·u − mean|" + (f" (ref. §10: b·u {e[0]}, median 0.384, mean 0.676)" if e else ""),
                f"b·u {row.pair.split:.3f}, median {row.median:.3f}, mean {row.mean:.3f}",
                abs(row.pair.split - row.median) < abs(row.pair.split - row.mean) and row.pair.antipodal,
            ),
            claim(
                f"Skewed s, λ = {row.lam:g}: the pair beats one atom + bias",
                "pair loss < one-atom loss; one atom denser than ½"
                + (f" (ref. §10: {e[3]} < {e[4]}, one atom active on {pct(e[5])})" if e else ""),
                f"{row.pair.loss:.1f} < {row.one_atom_loss:.1f}; one atom active on {pct(row.one_atom_active)}",
                row.pair.loss < row.one_atom_loss and row.one_atom_active > 0.5,
            ),
        ]
    return claims


def dense_markdown(r: DenseAntipodalResults) -> str:
    c, n = r.config, r.normal
    runs = [n.antipodal_init, *n.random_inits]
    lines = [
        "# Dense signed direction → antipodal pair (reference §6, ref. §10 Exp 3)",
        "",
        f"Normal case: s ~ N(0, 1) + {c.shift} along u, plus a sparse feature v ⊥ u (p = {c.sparse_p}, magnitudes "
        f"U{c.sparse_magnitude}), noise {c.noise}, D = {c.dim}, N = {c.n_points}, λ = {c.lam} (our choice: ref. §10 "
        f"does not state it), with a bias. Skewed case: s ~ Exp(1) − {c.skew_offset} along u with noise only (no "
        f"sparse feature: our reading of ref. §10's loss values). Seed {c.seed}.",
        "",
        "## Theory vs measurement",
        "",
        claims_table(r.claims),
        "",
        f"## Normal case (median of s {n.median:.3f}, mean {n.mean:.3f})",
        "",
        markdown_table(
            [
                "run",
                "cos(pair)",
                "cos(plus, u)",
                "b·u",
                "active + / −",
                "C1 prediction + / −",
                "pair L1",
                "loss",
                "converged (sweeps)",
            ],
            [
                [
                    x.label,
                    f"{x.cosine:.4f}",
                    f"{x.plus_cos_u:.4f}",
                    f"{x.split:.3f}",
                    f"{pct(x.active_plus)} / {pct(x.active_minus)}",
                    f"{pct(x.predicted_active_plus)} / {pct(x.predicted_active_minus)}",
                    f"{x.pair_l1:.0f}",
                    f"{x.loss:.2f}",
                    f"{x.converged} ({x.iterations})",
                ]
                for x in runs
            ],
        ),
        "",
        f"L1 cost of reconstructing s exactly: antipodal pair Σ|s − median| = {n.l1_pair_exact:.0f}; one atom + bias "
        f"Σ(s − min s) = {n.l1_one_atom_exact:.0f} (ref. §10: 3198 vs 12968).",
    ]
    if r.skewed:
        rows = []
        for row in r.skewed:
            e = SKEWED_EXPECTED.get(row.lam)
            rows.append(
                [
                    f"{row.lam:g}",
                    f"{row.pair.split:.3f}",
                    f"{pct(row.pair.active_plus)} / {pct(row.pair.active_minus)}",
                    f"{row.pair.loss:.1f}",
                    f"{row.one_atom_loss:.1f}",
                    pct(row.one_atom_active),
                    "–" if e is None else f"{e[0]} / {pct(e[1])} / {pct(e[2])} / {e[3]} / {e[4]} / {pct(e[5])}",
                ]
            )
        sk = r.skewed[0]
        lines += [
            "",
            f"## Skewed case (median of s {sk.median:.3f}, mean {sk.mean:.3f}; ref. §10: median 0.384, mean 0.676)",
            "",
            markdown_table(
                [
                    "λ",
                    "b·u",
                    "active + / −",
                    "pair loss",
                    "one atom + bias loss",
                    "one-atom active",
                    "ref. §10: b·u / + / − / pair / one / one active",
                ],
                rows,
            ),
            "",
            "One atom + bias: split (b·u) "
            + ", ".join(f"{row.one_atom_split:.3f} at λ = {row.lam:g}" for row in r.skewed)
            + "; sweeps: "
            + ", ".join(
                f"pair {row.pair.iterations}, one {'converged' if row.one_atom_converged else 'NOT converged'}"
                for row in r.skewed
            ),
        ]
    lines += [
        "",
        "Figure: figures/split_histograms.png (histogram of s with the split b·u, the median and the mean).",
        "",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in r.seconds.items()),
    ]
    return "\n".join(lines)


def plot_split_histograms(r: DenseAntipodalResults, s: Tensor, t: Tensor, path: Path) -> Path:
    panels = [("normal: s ~ N(0,1) + 0.5", s.numpy(), [(f"b·u (λ = {r.config.lam:g})", r.normal.antipodal_init.split)])]
    if r.skewed:
        splits = [(f"b·u (λ = {row.lam:g})", row.pair.split) for row in r.skewed]
        panels.append((f"skewed: s ~ Exp(1) − {r.config.skew_offset}", t.numpy(), splits))
    fig = Figure(figsize=(6 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, values, splits) in zip(axes, panels, strict=True):
        ax.hist(values, bins=80, color="0.75")
        ax.axvline(float(np.median(values)), color="k", lw=2, label=f"median {np.median(values):.3f}")
        ax.axvline(float(values.mean()), color="k", ls=":", lw=2, label=f"mean {values.mean():.3f}")
        for i, (label, split) in enumerate(splits):
            ax.axvline(split, color=PALETTE(3 + i), ls="--", lw=1.5, label=f"{label} = {split:.3f}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("s (projection on the dense direction u)")
        ax.legend(fontsize=8)
    fig.suptitle("The antipodal pair splits the dense direction at the median")
    return _save(fig, path, DEFAULT_DPI)


__all__ = ["DenseAntipodalConfig", "DenseAntipodalResults", "run_dense_antipodal"]
