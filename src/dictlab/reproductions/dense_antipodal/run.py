"""``dictlab reproduce dense-antipodal``: a dense signed direction becomes an antipodal pair (docs/optimality.md §6).

With a bias and a spare atom, replacing one dense atom by (u, −u) split at the median m of its projection s keeps
the reconstruction and lowers the L1 cost from Σ(s − min s) to Σ|s − m|. So the solver should end with an antipodal
pair whose split point b·u sits near the median (not the mean), each half active on about half the points.
"""

import time
from pathlib import Path

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.problem import L1Dictionary
from dictlab.diagnostics.solver import SolverResult, learn_dictionary, random_atoms
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.dense_antipodal.report import dense_claims, dense_markdown, plot_split_histograms
from dictlab.reproductions.synthetic import orthonormal_rows, uniform
from dictlab.stopwatch import Stopwatch


class DenseAntipodalConfig(ReproductionConfig):
    """Normal and skewed dense directions, with a bias."""

    dim: int = Field(default=8, ge=2, description="Data dimension D.")
    n_points: int = Field(default=4000, gt=0, description="Data points N.")
    noise: float = Field(default=0.01, ge=0, description="Std of isotropic Gaussian noise.")
    lam: float = Field(default=0.1, gt=0, description="λ of the normal case.")
    shift: float = Field(default=0.5, description="Normal case: s ~ N(0, 1) + shift along u.")
    sparse_p: float = Field(
        default=0.3, ge=0, le=1, description="Normal case: firing probability of the sparse feature v ⊥ u."
    )
    sparse_magnitude: tuple[float, float] = Field(
        default=(0.5, 1.5), description="Sparse feature magnitudes ~ U(low, high)."
    )
    random_widths: tuple[int, ...] = Field(default=(3, 4), description="Atoms of the random-init runs (normal case).")
    random_seeds: int = Field(default=2, ge=0, description="Random initialisations per width.")
    skew_offset: float = Field(
        default=0.3, description="Skewed case: s ~ Exp(1) − offset along u (dense direction only)."
    )
    skew_lams: tuple[float, ...] = Field(default=(0.1, 0.01), description="λ values of the skewed case.")
    antipodal_cosine: float = Field(default=-0.99, description="A pair is antipodal below this cosine.")
    tol: float = Field(default=1e-9, gt=0, description="Solver stopping tolerance on C2/C3.")
    max_iter: int = Field(default=5000, gt=0, description="Solver sweep limit.")

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
