"""Dense features and antipodal pairs.

With a bias and a spare atom, no optimal atom is denser than ½: replacing (w, a) by (w, (a − m)_+) and
(−w, (m − a)_+) with the median m, and moving the bias by m·w, keeps every reconstruction and lowers the L1 term
from Σ a to Σ|a − m|. So a dense signed direction u is carried by an antipodal pair (u, −u) splitting the data
near the median of the projection, each half active on about half the points. For any other atom k, E2 with
g_{+,n} = 1 on S₊, −1 on S₋ and |g_{+,n}| ≤ 1 elsewhere (C1 for both halves) predicts

    |c(u, w_k) − (P_k(S₊) − P_k(S₋))| ≤ P_k(neither),

with P_k(·) the code-weighted shares of k's mass on each half and on the points where neither half is active.
"""

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.sparse_codes import SparseCodes


class DenseAtom(BaseModel):
    atom: int
    density: float


class AntipodalPair(BaseModel):
    """An atom pair with cosine near −1 and what the theory predicts for it."""

    plus: int
    minus: int
    cosine: float
    density_plus: float
    density_minus: float
    bias_along_u: float | None = Field(description="b·u, the split point (u = w_plus); None without a bias.")
    median_projection: float = Field(description="median_n uᵀx_n; the theory puts the split near it.")
    n_predicted_atoms: int = Field(description="Other live atoms with at least half their mass on S₊ ∪ S₋.")
    prediction_max_error: float | None = Field(description="max over those atoms of |c(u, w_k) − (P_k(S₊) − P_k(S₋))|.")
    prediction_max_excess: float | None = Field(
        description="max over those atoms of (|c(u, w_k) − (P_k(S₊) − P_k(S₋))| − P_k(neither))_+; 0 at an optimum."
    )


class DenseSummary(BaseModel):
    n_dense: int = Field(description="Atoms active on more than half the points.")
    dense_atoms: list[DenseAtom]
    n_antipodal_pairs: int
    antipodal_pairs: list[AntipodalPair]


def dense_summary(
    X: Tensor,
    codes: SparseCodes,
    atoms: Tensor,
    bias: Tensor | None,
    antipodal: Tensor,
    cosines: Tensor,
    *,
    limit: int = 20,
) -> DenseSummary:
    """Dense atoms and the predicted relations for the most antipodal pairs [P, 2]."""
    density = codes.density.double()
    dense = torch.nonzero(density > 0.5).flatten()
    order = torch.argsort(cosines)[:limit]
    W = atoms.double()
    mass = codes.mass.double()
    pairs = []
    for i in order.tolist():
        p, m = (int(v) for v in antipodal[i])
        u = W[p]
        on_plus = torch.zeros(codes.n_points, dtype=torch.bool)
        on_plus[codes.rows[codes.cols == p]] = True
        on_minus = torch.zeros(codes.n_points, dtype=torch.bool)
        on_minus[codes.rows[codes.cols == m]] = True
        weights = codes.values.double()
        plus_mass = torch.zeros(codes.n_atoms, dtype=torch.float64).index_add_(
            0, codes.cols, weights * on_plus[codes.rows]
        )
        minus_mass = torch.zeros(codes.n_atoms, dtype=torch.float64).index_add_(
            0, codes.cols, weights * on_minus[codes.rows]
        )
        others = torch.ones(codes.n_atoms, dtype=torch.bool)
        others[[p, m]] = False
        either = torch.zeros(codes.n_atoms, dtype=torch.float64).index_add_(
            0, codes.cols, weights * (on_plus | on_minus)[codes.rows]
        )
        ids = torch.nonzero(others & (mass > 0) & (either >= 0.5 * mass)).flatten()
        predicted = (plus_mass[ids] - minus_mass[ids]) / mass[ids]
        neither = 1 - either[ids] / mass[ids]
        actual = W[ids] @ u
        error = (actual - predicted).abs()
        pairs.append(
            AntipodalPair(
                plus=p,
                minus=m,
                cosine=float(cosines[i]),
                density_plus=float(density[p]),
                density_minus=float(density[m]),
                bias_along_u=None if bias is None else float(bias.double() @ u),
                median_projection=float((X.double() @ u).median()),
                n_predicted_atoms=len(ids),
                prediction_max_error=float(error.max()) if len(ids) else None,
                prediction_max_excess=float((error - neither).clamp_min(0).max()) if len(ids) else None,
            )
        )
    return DenseSummary(
        n_dense=len(dense),
        dense_atoms=[DenseAtom(atom=int(k), density=float(density[k])) for k in dense[:limit]],
        n_antipodal_pairs=len(antipodal),
        antipodal_pairs=pairs,
    )
