"""``dictlab reproduce wide-limit``: width sweep of (P_K) against the convex bound P_∞ (docs/optimality.md §8).

Every K-atom dictionary at the same λ has loss ≥ P_∞, the value of the group lasso with one group per point. As K
grows, features keep splitting towards one atom per data ray x_n/‖x_n‖ (points outside the λ-ball): the gap to
P_∞ shrinks, mean L0 falls towards its limit (1 outside the ball, 0 inside), max‖r_n‖/λ falls towards 1 and live
atoms align with data rays.
"""

import itertools
import time
from pathlib import Path

import torch
from pydantic import BaseModel, Field

from dictlab.diagnostics.solver import learn_dictionary, random_atoms
from dictlab.diagnostics.wide_limit import wide_limit
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.synthetic import LARGE, SMALL, WideSweep, sparse_data
from dictlab.reproductions.wide_limit.report import plot_width_sweep, wide_claims, wide_markdown
from dictlab.stopwatch import Stopwatch

BOUND_SLACK = 1e-9
"""Relative round-off allowed when checking P_K ≥ P_∞."""


class WideLimitConfig(ReproductionConfig):
    """λ, the data sets and widths to sweep, and the solver's stopping rule."""

    lam: float = Field(default=0.3, gt=0, description="λ of (P_K) and of the convex problem.")
    sweeps: tuple[WideSweep, ...] = Field(default=(SMALL, LARGE), description="Data sets and widths.")
    tol: float = Field(default=1e-9, gt=0, description="Solver stopping tolerance on C2.")
    max_iter: int = Field(default=5000, gt=0, description="Solver sweep limit.")

    @classmethod
    def quick(cls, seed: int = 0) -> "WideLimitConfig":
        """The small sweep only, K ≤ 32 and 2 seeds (a few seconds)."""
        return cls(seed=seed, sweeps=(SMALL.model_copy(update={"widths": (4, 8, 16, 32), "seeds": 2}),))


class WidthRun(BaseModel):
    width: int
    init_seed: int
    loss: float
    gap: float = Field(description="loss − P_∞.")
    mean_l0: float = Field(description="Mean active atoms per point (all points).")
    max_residual_over_lambda: float = Field(description="max_n ‖r_n‖/λ (> 1: a new atom would lower the loss).")
    live_atoms: int
    alignment: float = Field(
        description="Mean over live atoms of the largest cosine to a data ray x_n/‖x_n‖ outside the λ-ball."
    )
    converged: bool
    iterations: int
    stationarity: float
    seconds: float


class SweepResult(BaseModel):
    sweep: WideSweep
    p_infinity: float = Field(description="P_∞, the convex wide-limit bound.")
    bound_duality_gap: float = Field(description="Certificate of P_∞ (0 = exactly optimal).")
    n_rays: int = Field(description="Points outside the λ-ball = atoms of the limiting dictionary.")
    limit_mean_l0: float = Field(description="Mean L0 of the limit: the share of points outside the λ-ball.")
    runs: list[WidthRun]
    best: list[WidthRun] = Field(description="Lowest loss per width.")
    bound_holds: bool = Field(description="P_∞ ≤ every loss.")
    gap_decreasing: bool = Field(description="The best gap falls strictly with every width step.")


class WideLimitResults(BaseModel):
    config: WideLimitConfig
    sweeps: list[SweepResult]
    claims: list[Claim]
    seconds: dict[str, float]


def run_sweep(sweep: WideSweep, config: WideLimitConfig, generator: torch.Generator, echo: Echo) -> SweepResult:
    lam = config.lam
    X = sparse_data(sweep, generator)
    limit = wide_limit(X, lam, bias=False)
    norms = X.norm(dim=1)
    rays = X[norms > lam] / norms[norms > lam, None]
    runs = []
    for width in sweep.widths:
        for s in range(sweep.seeds):
            init_seed = config.seed * 1_000_003 + width * 101 + s
            started = time.perf_counter()
            W0 = random_atoms(width, sweep.dim, torch.Generator().manual_seed(init_seed))
            result = learn_dictionary(X, lam, W0, bias=False, tol=config.tol, max_iter=config.max_iter)
            A, W = result.codes, result.dictionary.atoms
            live = A.sum(dim=0) > 0
            R = X - A @ W
            runs.append(
                WidthRun(
                    width=width,
                    init_seed=init_seed,
                    loss=result.loss,
                    gap=result.loss - limit.value,
                    mean_l0=float((A > 0).sum(dim=1).double().mean()),
                    max_residual_over_lambda=float(R.norm(dim=1).max() / lam),
                    live_atoms=int(live.sum()),
                    alignment=float((W[live] @ rays.T).amax(dim=1).mean()) if live.any() and len(rays) else 0.0,
                    converged=result.converged,
                    iterations=result.iterations,
                    stationarity=result.stationarity,
                    seconds=round(time.perf_counter() - started, 2),
                )
            )
        best = min((r for r in runs if r.width == width), key=lambda r: r.loss)
        echo(f"wide-limit {sweep.name}: K = {width}: gap {best.gap:.4f}, L0 {best.mean_l0:.2f}, live {best.live_atoms}")
    best = [min((r for r in runs if r.width == w), key=lambda r: r.loss) for w in sweep.widths]
    return SweepResult(
        sweep=sweep,
        p_infinity=limit.value,
        bound_duality_gap=limit.duality_gap,
        n_rays=len(rays),
        limit_mean_l0=len(rays) / len(X),
        runs=runs,
        best=best,
        bound_holds=all(r.loss >= limit.value * (1 - BOUND_SLACK) for r in runs),
        gap_decreasing=all(b.gap < a.gap for a, b in itertools.pairwise(best)),
    )


def run_wide_limit(config: WideLimitConfig, out: Path, echo: Echo = print) -> WideLimitResults:
    """Run every sweep, write ``results.json``, ``results.md`` and ``figures/width_sweep.png`` under ``out``."""
    clock = Stopwatch()
    generator = torch.Generator().manual_seed(config.seed)
    sweeps = []
    for sweep in config.sweeps:
        sweeps.append(run_sweep(sweep, config, generator, echo))
        clock.lap(sweep.name)
    results = WideLimitResults(config=config, sweeps=sweeps, claims=wide_claims(sweeps), seconds=clock.seconds)
    plot_width_sweep(results, out / "figures" / "width_sweep.png")
    finish("wide-limit", out, results, wide_markdown, clock, echo)
    return results
