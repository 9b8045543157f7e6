"""The convex wide-dictionary limit of (P_K): one group-lasso shrinkage per data point.

With unlimited atoms, Σ_k‖w_k‖‖α_k‖₁ can be as small as Σ_n‖z_n‖ for Z = A·W, so (P_K) relaxes to

    P_∞ = min_{Z, b} ½‖X − Z − 1bᵀ‖² + λ·Σ_n ‖z_n‖₂,

solved by z_n = (1 − λ/‖x_n − b‖)_+ (x_n − b). Without a bias this is closed form; with one, b is the fixed point
of Σ_n φ_λ(x_n − b) = 0, φ_λ(v) = v·min(1, λ/‖v‖) (a Huber location estimate), found by iteratively
reweighted means b ← Σ_n ω_n x_n / Σ_n ω_n with ω_n = min(1, λ/‖x_n − b‖). The bound reported is the value of
a feasible dual point, so it is a certified lower bound even if the iteration stops early. Every K-atom
dictionary at the same λ has P_K ≥ P_∞; the optimum puts one atom on each ray (x_n − b)/‖x_n − b‖ of the points
outside the λ-ball, so splitting stops once K reaches the number of rays.
"""

from dataclasses import dataclass

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.problem import check_data, check_lambda


class WideLimitSummary(BaseModel):
    """The convex bound P_∞ at λ and how a dictionary compares with it."""

    value: float = Field(description="P_∞: a feasible dual value, a certified lower bound on (P_K) for every K.")
    duality_gap: float = Field(description="Primal value at the computed b* minus the bound (0 = exact).")
    ball_fraction: float = Field(description="Share of points with ‖x_n − b*‖ ≤ λ: zero code in the limit.")
    iterations: int
    dictionary_loss: float | None = Field(default=None, description="(P_K) loss of the diagnosed dictionary.")
    gap: float | None = Field(default=None, description="dictionary_loss − P_∞ (≥ 0).")
    relative_gap: float | None = Field(default=None, description="gap / P_∞.")


@dataclass(frozen=True)
class WideLimit:
    """Solution of the convex wide-dictionary problem."""

    value: float
    bias: Tensor | None
    """b*: [D], or None without a bias."""
    duality_gap: float
    ball_fraction: float
    iterations: int

    def summary(self, dictionary_loss: float | None = None) -> WideLimitSummary:
        gap = None if dictionary_loss is None else dictionary_loss - self.value
        return WideLimitSummary(
            value=self.value,
            duality_gap=self.duality_gap,
            ball_fraction=self.ball_fraction,
            iterations=self.iterations,
            dictionary_loss=dictionary_loss,
            gap=gap,
            relative_gap=None if gap is None else gap / self.value if self.value > 0 else None,
        )


def _huber_value(norms: Tensor, lam: float) -> float:
    """Σ_n [λt − λ²/2 if t > λ else t²/2] for t = ‖x_n − b‖."""
    return float(torch.where(norms > lam, lam * norms - lam * lam / 2, norms.pow(2) / 2).sum())


def wide_limit(X: Tensor, lam: float, *, bias: bool = True, tol: float = 1e-12, max_iter: int = 100_000) -> WideLimit:
    """Solve the convex problem for ``X: [N, D]`` and certify it with a dual point."""
    lam = check_lambda(lam)
    X = check_data(X).double()
    b = X.median(dim=0).values if bias else torch.zeros(X.shape[1], dtype=X.dtype)
    iterations = 0
    if bias:
        for iterations in range(1, max_iter + 1):  # noqa: B007
            weights = (lam / (X - b).norm(dim=1).clamp_min(torch.finfo(X.dtype).tiny)).clamp_max(1)
            new = (weights[:, None] * X).sum(dim=0) / weights.sum()
            step = float((new - b).norm())
            b = new
            if step <= tol * max(1.0, float(b.norm())):
                break
    V = X - b if bias else X
    norms = V.norm(dim=1)
    primal = _huber_value(norms, lam)
    # Dual: max ⟨R, X⟩ − ½‖R‖² with ‖r_n‖ ≤ λ (and Σ r_n = 0 with a bias); R = φ_λ(X − b) = V·min(1, λ/‖v_n‖),
    # made feasible. Without a bias R_n = s_n·x_n, so the dual needs only the row norms.
    scale = (lam / norms.clamp_min(torch.finfo(X.dtype).tiny)).clamp_max(1)
    if bias:
        R = V * scale[:, None]
        R -= R.mean(dim=0)
        largest = float(R.norm(dim=1).max())
        if largest > lam:
            R *= lam / largest
        dual = float((R * X).sum() - 0.5 * R.pow(2).sum())
    else:
        squared = norms.pow(2)
        dual = float((scale * squared).sum() - 0.5 * (scale.pow(2) * squared).sum())
    return WideLimit(
        value=dual,
        bias=b if bias else None,
        duality_gap=max(0.0, primal - dual),
        ball_fraction=float((norms <= lam).double().mean()),
        iterations=iterations,
    )


def limit_atoms(X: Tensor, limit: WideLimit, lam: float) -> Tensor:
    """The limiting dictionary: one unit atom per point outside the λ-ball, along (x_n − b*): [M, D]."""
    V = X.double() if limit.bias is None else X.double() - limit.bias
    norms = V.norm(dim=1)
    keep = norms > lam
    return V[keep] / norms[keep, None]
