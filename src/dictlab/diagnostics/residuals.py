"""Structure of residuals at a (P_K) optimum: shrinkage, the spare-atom test and split pressure.

- Per point (C1): W_Sᵀr_n = λ·1 on the active set S, so r_n carries a deterministic shrinkage component
  λ·W_S(W_SᵀW_S)⁻¹1 in span(W_S); ⟨r_n, A_n·W⟩ = λ‖a_n‖₁ > 0. Residuals are predictable from the codes.
- Spare atom: a new atom u = r_n/‖r_n‖ lowers the loss whenever ‖r_n‖ > λ; at the wide limit every ‖r_n‖ ≤ λ.
- Split pressure of atom k: SP_k = max_{‖v‖=1, v ⊥ w_k} Σ_n a_nk|vᵀr_n|, the first-order gain of splitting w_k
  into w_k ± εv. Zero iff every k-active residual equals λw_k. Estimated by power iterations on the code-weighted
  residual covariance followed by the sign fixed-point v ← normalise(P_k^⊥ Σ_n a_nk sign(vᵀr_n) r_n), which never
  decreases the objective, so the reported value is a lower bound on SP_k.
"""

import math

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.summary import Distribution, Offender

POINT_CHUNK = 1024
"""Points per batched solve (the gathered supports are [chunk, L0, D])."""
GROUP_ROWS = 8192
"""Gathered residual rows per group of atoms in the split-pressure iterations (a group is [atoms, rows, D])."""
CONFIDENCE = 0.95
"""Confidence of the sampling bound of the per-point distributions."""
SINGULAR_PIVOT = 1e-6
"""A support Gram whose Cholesky pivots span more than this ratio is treated as singular (least squares)."""


class ResidualSummary(BaseModel):
    """Residual statistics relative to λ."""

    residual_norm_over_lambda: Distribution = Field(description="‖r_n‖/λ over points.")
    fraction_above_lambda: float = Field(description="Share of points with ‖r_n‖ > λ (a new atom there helps).")
    worst_points: list[Offender] = Field(description="Points with the largest ‖r_n‖/λ.")
    shrinkage_share: Distribution = Field(
        description="‖P_S r_n‖²/‖r_n‖²: the share of each active point's residual inside span(W_S)."
    )
    shrinkage_deviation: Distribution = Field(
        description="‖P_S r_n − λW_S(W_SᵀW_S)⁻¹1‖/λ: distance of that part from the predicted shrinkage."
    )
    shrinkage_exact: bool = Field(
        default=True, description="The two shrinkage distributions cover every active point (False: a sample)."
    )
    shrinkage_error_bound: str | None = Field(
        default=None, description="What the sample guarantees about those distributions when they are sampled."
    )
    reconstruction_alignment: Distribution = Field(
        description="⟨r_n, A_n·W⟩/(λ‖a_n‖₁) over active points; 1 at a stationary point."
    )
    split_pressure: Distribution = Field(description="SP_k/(λ‖α_k‖₁) over live atoms (lower-bound estimate).")
    worst_split_pressure: list[Offender]


def support_projections(
    codes: SparseCodes, atoms: Tensor, g_active: Tensor, r_norm: Tensor, lam: float, points: Tensor
) -> tuple[Tensor, Tensor]:
    """Per point of ``points`` [m] (all active): (‖P_S r‖²/‖r‖², ‖P_S r − λW_S(W_SᵀW_S)⁻¹1‖/λ), both [m].

    With b = W_S r = λ·g_S (the support's dots, ``g_active`` [nnz]) and the support Gram G = W_S W_Sᵀ, the two are
    quadratic forms: ‖P_S r‖² = bᵀG⁻¹b and ‖W_Sᵀ G⁻¹(b − λ1)‖² = (b − λ1)ᵀG⁻¹(b − λ1); batched Cholesky on the
    padded supports, least squares where the support atoms are linearly dependent.
    """
    share = torch.empty(len(points), dtype=r_norm.dtype)
    deviation = torch.empty(len(points), dtype=r_norm.dtype)
    for lo in range(0, len(points), POINT_CHUNK):
        pts = points[lo : lo + POINT_CHUNK]
        entries, owner = codes.entries_of(pts)
        slot = entries - codes.row_offsets[pts][owner]  # position within the point's support
        width = int(codes.l0_per_point[pts].max())
        idx = torch.zeros(len(pts), width, dtype=torch.long)
        idx[owner, slot] = codes.cols[entries]
        live = torch.zeros(len(pts), width, dtype=torch.bool)
        live[owner, slot] = True
        WS = atoms[idx] * live[..., None]  # [B, s, D]
        gram = WS @ WS.transpose(1, 2) + torch.diag_embed((~live).to(WS.dtype))
        b = torch.zeros(len(pts), width, dtype=WS.dtype)
        b[owner, slot] = lam * g_active[entries].to(WS.dtype)
        rhs = torch.stack([b, b - lam * live.to(WS.dtype)], dim=2)  # [B, s, 2]
        quad = _quadratic_forms(gram, rhs)
        share[lo : lo + len(pts)] = quad[:, 0] / r_norm[pts].pow(2).clamp_min(1e-300)
        deviation[lo : lo + len(pts)] = quad[:, 1].clamp_min(0).sqrt() / lam
    return share, deviation


def _quadratic_forms(gram: Tensor, rhs: Tensor) -> Tensor:
    """rᵀG⁻¹r for each of the two right-hand sides of each system: [B, 2] (G [B, s, s] PSD, rhs [B, s, 2])."""
    L, info = torch.linalg.cholesky_ex(gram)
    # cholesky_ex returns column-major factors; solve_triangular on them is ~100× slower with 2 threads.
    out = torch.linalg.solve_triangular(L.contiguous(), rhs, upper=False).pow(2).sum(dim=1)
    pivots = L.diagonal(dim1=1, dim2=2)
    # Linearly dependent support atoms (a failed or a numerically singular factor): G⁺ via least squares.
    singular = (info != 0) | (pivots.amin(dim=1) <= SINGULAR_PIVOT * pivots.amax(dim=1))
    if singular.any():
        solution = torch.linalg.lstsq(gram[singular], rhs[singular], driver="gelsd").solution  # SVD: rank-safe
        out[singular] = (rhs[singular] * solution).sum(dim=1)
    return out


def split_pressure(
    R: Tensor,
    codes: SparseCodes,
    atoms: Tensor,
    *,
    power_iterations: int = 4,
    sign_iterations: int = 4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SP_k (lower-bound estimate) for every atom: [K]; 0 for dead atoms.

    Atoms are taken in groups of similar support size: each group's active residuals R_S [atoms, |S|, D]
    (padded) and codes are gathered once, then power iterations on the code-weighted covariance
    P(R_Sᵀ diag(a) R_S)P (P projects out w_k) and sign iterations run on the whole group; an atom stops at its
    first sign step that does not increase Σ_n a_nk|vᵀr_n|. The iterations run in fp32 (a lower-bound estimate
    needs no more).
    """
    K, D = atoms.shape
    out = torch.zeros(K, dtype=R.dtype)
    start = torch.randn(K, D, generator=generator, dtype=R.dtype)
    padded = torch.cat([R.float(), torch.zeros(1, D)])  # row N is the zero row that padding gathers
    counts = codes.counts
    live = torch.nonzero(counts > 0).flatten()
    live = live[torch.argsort(counts[live], stable=True)]
    lo = 0
    while lo < len(live):
        hi = lo + 1  # the largest group whose padded block stays within GROUP_ROWS rows (at least one atom)
        while hi < len(live) and (hi + 1 - lo) * int(counts[live[hi]]) <= GROUP_ROWS:
            hi += 1
        group = live[lo:hi]
        out[group] = _group_split_pressure(
            padded, codes, atoms[group], group, start[group], power_iterations, sign_iterations
        )
        lo = hi
    return out


def _group_split_pressure(
    padded: Tensor,
    codes: SparseCodes,
    w: Tensor,
    group: Tensor,
    start: Tensor,
    power_iterations: int,
    sign_iterations: int,
) -> Tensor:
    """SP of the atoms ``group`` [G] (atoms ``w`` [G, D], start vectors [G, D]) from the fp32 residuals ``padded``
    [N + 1, D] (last row zero): [G].

    Only v ⊥ w_k matters, and for such v the projected block B·P_k gives B·v and P_k·Bᵀu, so the projection
    is applied to the [G, D] vectors instead of the block.
    """
    entries, live = codes.atom_entries(group)
    block = padded[torch.where(live, codes.rows[entries], len(padded) - 1)]  # [G, m, D], padding rows zero
    a = torch.where(live, codes.values[entries].float(), 0.0)
    w = w.float()

    def perpendicular(v: Tensor) -> Tensor:
        return v - (v * w).sum(dim=1, keepdim=True) * w

    v = _unit(perpendicular(start.float()))
    for _ in range(power_iterations):
        v = _unit(perpendicular(_apply_t(block, a * _apply(block, v))))
    bv = _apply(block, v)
    best = (a * bv.abs()).sum(dim=1)
    done = torch.zeros(len(group), dtype=torch.bool)
    for _ in range(sign_iterations):
        candidate = perpendicular(_apply_t(block, a * torch.sign(bv)))
        norm = candidate.norm(dim=1, keepdim=True)
        candidate = candidate / norm.clamp_min(1e-30)
        b_candidate = _apply(block, candidate)
        value = (a * b_candidate.abs()).sum(dim=1)
        better = ~done & (norm[:, 0] > 0) & (value > best)
        v = torch.where(better[:, None], candidate, v)
        bv = torch.where(better[:, None], b_candidate, bv)
        best = torch.where(better, value, best)
        done |= ~better
        if bool(done.all()):
            break
    return best.double()


def _apply(block: Tensor, v: Tensor) -> Tensor:
    """Each atom's residual block times its vector: [G, m] for block [G, m, D], v [G, D] (as vᵀ·blockᵀ, which
    runs as a matrix product rather than a batched matrix-vector one)."""
    return (v[:, None, :] @ block.transpose(1, 2))[:, 0, :]


def _apply_t(block: Tensor, u: Tensor) -> Tensor:
    """Each atom's transposed block times its weights: [G, D] for block [G, m, D], u [G, m]."""
    return (u[:, None, :] @ block)[:, 0, :]


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)


def residual_summary(
    R: Tensor,
    codes: SparseCodes,
    atoms: Tensor,
    lam: float,
    g_active: Tensor,
    *,
    max_points: int | None = None,
    generator: torch.Generator | None = None,
    n_worst: int = 5,
) -> tuple[ResidualSummary, dict[str, Tensor]]:
    """Residual structure of (R [N, D], A, W [K, D]) at λ, with g_active [nnz] = w_kᵀr_n/λ on the support; also
    returns the arrays behind the summary. The shrinkage distributions run on at most ``max_points`` random
    active points (the summary states the sampling bound); everything else covers every point and atom."""
    sp = split_pressure(R, codes, atoms, generator=generator)  # first: its start vectors do not depend on sampling
    r_norm = R.norm(dim=1)
    norm_ratio = r_norm / lam
    l1 = codes.l1_per_point
    active_points = torch.nonzero(l1 > 0).flatten()
    sampled = max_points is not None and len(active_points) > max_points
    if sampled:
        assert max_points is not None
        pick = torch.randperm(len(active_points), generator=generator)[:max_points]
        active_points = active_points[pick].sort().values
    share, deviation = support_projections(codes, atoms, g_active, r_norm, lam, active_points)
    bound = None
    if sampled:
        epsilon = math.sqrt(math.log(2 / (1 - CONFIDENCE)) / (2 * len(active_points)))
        bound = (
            f"{len(active_points)} random active points: every quantile (and the mean of the share) is within "
            f"{epsilon:.4f} in rank of the whole population's ({CONFIDENCE:.0%} confidence, DKW); max is the "
            "sample's"
        )
    # ⟨r_n, A_n·W⟩ = Σ_k a_nk w_kᵀr_n = λ Σ_k a_nk g_kn
    weighted = torch.zeros(codes.n_points, dtype=R.dtype).index_add_(0, codes.rows, codes.values.to(R.dtype) * g_active)
    active = l1 > 0
    alignment = weighted[active] / l1[active].to(R.dtype)
    mass = codes.mass.to(R.dtype)
    live = torch.nonzero(mass > 0).flatten()
    sp_rel = sp[live] / (lam * mass[live])
    order = torch.argsort(norm_ratio, descending=True)[:n_worst]
    sp_order = torch.argsort(sp_rel, descending=True)[:n_worst]
    summary = ResidualSummary(
        residual_norm_over_lambda=Distribution.of(norm_ratio),
        fraction_above_lambda=float((norm_ratio > 1 + 1e-9).double().mean()),
        worst_points=[Offender(where=[int(i)], value=float(norm_ratio[i])) for i in order],
        shrinkage_share=Distribution.of(share),
        shrinkage_deviation=Distribution.of(deviation),
        shrinkage_exact=not sampled,
        shrinkage_error_bound=bound,
        reconstruction_alignment=Distribution.of(alignment),
        split_pressure=Distribution.of(sp_rel),
        worst_split_pressure=[Offender(where=[int(live[i])], value=float(sp_rel[i])) for i in sp_order],
    )
    return summary, {"residual_norm_over_lambda": norm_ratio, "split_pressure": sp_rel, "split_atoms": live}
